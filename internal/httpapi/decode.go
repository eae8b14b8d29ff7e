package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/agentd/agentd/internal/session"
)

// decode reads a JSON object body into v, strictly: unknown fields, trailing
// data and bodies over the limit are errors. An empty body is allowed when
// optional is true and leaves v as it was.
//
// The read is bounded by the server's read timeout (Timeouts.Read), which
// runs from the request's first byte; a client that stops sending gets 408,
// or 503 if the server is shutting down (Shutdown cuts the read short).
func (s *Server) decode(w http.ResponseWriter, r *http.Request, v any, optional bool) error {
	data, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(data)) == 0 {
		if optional {
			return nil
		}
		return errBadRequest(CodeInvalidJSON, "the body is empty; want a JSON object")
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return &apiError{http.StatusUnsupportedMediaType, CodeUnsupportedMediaType, "send the body as application/json, not " + strconv.Quote(ct)}
		}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errBadRequest(CodeInvalidJSON, "the body has data after its JSON object")
	}
	return nil
}

// readBody reads the whole body, at most MaxBodyBytes of it, within the
// read timeout (see decode).
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe):
			return nil, err
		case isTimeout(err) && s.draining.Load():
			return nil, session.ErrShuttingDown
		case isTimeout(err):
			return nil, &apiError{http.StatusRequestTimeout, CodeRequestTimeout, "the request body did not arrive within the read timeout"}
		}
		return nil, errBadRequest(CodeInvalidJSON, "reading the body: "+err.Error())
	}
	return data, nil
}

func decodeError(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return errBadRequest(CodeInvalidJSON, fmt.Sprintf("malformed JSON at byte %d: %v", syn.Offset, err))
	case errors.As(err, &typ):
		if typ.Field == "" {
			return errBadRequest(CodeInvalidJSON, "the body must be a JSON object")
		}
		return errBadRequest(CodeInvalidJSON, fmt.Sprintf("field %q must be %s, not %s", typ.Field, typ.Type, typ.Value))
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return errBadRequest(CodeUnknownField, "unknown field "+strings.TrimPrefix(err.Error(), "json: unknown field "))
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errBadRequest(CodeInvalidJSON, "malformed JSON: the body ends early")
	default:
		return errBadRequest(CodeInvalidJSON, "malformed JSON: "+err.Error())
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
