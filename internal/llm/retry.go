package llm

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	openai "github.com/sashabaranov/go-openai"
)

// retryableStatus lists the HTTP statuses worth another attempt (Agentao
// §2.11; 529 is Anthropic's "overloaded").
var retryableStatus = map[int]bool{
	http.StatusRequestTimeout:      true, // 408
	http.StatusConflict:            true, // 409
	http.StatusTooEarly:            true, // 425
	http.StatusTooManyRequests:     true, // 429
	http.StatusInternalServerError: true, // 500
	http.StatusBadGateway:          true, // 502
	http.StatusServiceUnavailable:  true, // 503
	http.StatusGatewayTimeout:      true, // 504
	529:                            true,
}

// failure is a failed attempt, classified.
type failure struct {
	err           error // redacted: safe to show and log
	status        int   // 0 for network and protocol errors
	retryable     bool
	retryAfter    time.Duration
	hasRetryAfter bool
}

// classify explains err, returned by go-openai for an attempt that d sent.
func (c *Client) classify(err error, d *attemptDoer) *failure {
	f := &failure{}
	var (
		apiErr *openai.APIError
		reqErr *openai.RequestError
		synErr *json.SyntaxError
		typErr *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &apiErr) && apiErr.HTTPStatusCode > 0:
		// An error status with an OpenAI-shaped body.
		f.status = apiErr.HTTPStatusCode
		f.retryable = retryableStatus[f.status]
		f.err = c.providerError(statusText(f.status), apiErr)
	case errors.As(err, &reqErr):
		// An error status whose body is not an OpenAI error.
		f.status = reqErr.HTTPStatusCode
		f.retryable = retryableStatus[f.status]
		f.err = errors.New(c.redact(fmt.Sprintf("%s: response body is not an API error: %s", statusText(f.status), snippet(reqErr.Body))))
	case errors.As(err, &apiErr):
		// An error sent inside a 200 stream.
		f.retryable = apiErr.Type == "server_error" || apiErr.Type == "overloaded_error"
		f.err = c.providerError("error in stream", apiErr)
	case transient(err):
		f.retryable = true
		f.err = &redactedError{msg: c.redact("connection error: " + err.Error()), err: err}
	case errors.Is(err, openai.ErrTooManyEmptyStreamMessages):
		f.err = c.notAStream(d)
	case errors.As(err, &synErr), errors.As(err, &typErr):
		f.err = errors.New(c.redact(fmt.Sprintf("malformed stream chunk (%v) in %s", err, snippet(d.prefix()))))
	default:
		f.err = &redactedError{msg: c.redact(err.Error()), err: err}
	}
	if d.sent {
		f.retryAfter, f.hasRetryAfter = parseRetryAfter(d.header.Get("Retry-After"), time.Now())
	}
	return f
}

// notAStream explains a 200 response that carried no SSE data.
func (c *Client) notAStream(d *attemptDoer) error {
	return errors.New(c.redact(fmt.Sprintf("response is not an event stream (HTTP %d, Content-Type %q): %s",
		d.status, d.header.Get("Content-Type"), snippet(d.prefix()))))
}

func (c *Client) providerError(what string, e *openai.APIError) error {
	msg := what
	if e.Message != "" {
		msg += ": " + e.Message
	}
	var details []string
	if e.Type != "" {
		details = append(details, "type "+e.Type)
	}
	// go-openai decodes "code": null as 0.
	if code := fmt.Sprint(e.Code); e.Code != nil && code != "" && code != "0" {
		details = append(details, "code "+code)
	}
	if len(details) > 0 {
		msg += " (" + strings.Join(details, ", ") + ")"
	}
	return errors.New(c.redact(msg))
}

// redact removes the API key from s, should a provider echo it.
func (c *Client) redact(s string) string {
	if c.cfg.APIKey == "" {
		return s
	}
	return strings.ReplaceAll(s, c.cfg.APIKey, "[redacted]")
}

// redactedError keeps the chain of a network error under a redacted message.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// transient reports whether err is a network failure worth another attempt:
// a refused, reset or dropped connection, a timeout, a stream cut short.
func transient(err error) bool {
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, syscall.EPIPE) {
		return true
	}
	var certErr *tls.CertificateVerificationError
	if errors.As(err, &certErr) {
		return false
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) {
		return true
	}
	var netErr net.Error
	if errors.As(err, &netErr) && netErr.Timeout() {
		return true
	}
	// HTTP/2 failures (GOAWAY, a reset stream) come from net/http's bundled
	// http2 package, whose error types are not exported.
	var urlErr *url.Error
	msg := err.Error()
	if errors.As(err, &urlErr) {
		msg = urlErr.Err.Error()
	}
	return strings.HasPrefix(msg, "http2: ") || strings.HasPrefix(msg, "stream error: ")
}

// parseRetryAfter reads a Retry-After value: delay seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseFloat(v, 64); err == nil {
		if secs < 0 || math.IsNaN(secs) {
			return 0, false
		}
		secs = min(secs, 24*3600) // the caps apply later; avoid overflow here
		return time.Duration(secs * float64(time.Second)), true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// backoff returns the wait before retry number n (from 0) after f.
func (c *Client) backoff(n int, f *failure) time.Duration {
	if f.hasRetryAfter {
		return min(f.retryAfter, c.cfg.MaxBackoff)
	}
	d := c.cfg.MaxBackoff
	if n < 30 {
		d = min(c.cfg.BaseBackoff<<n, c.cfg.MaxBackoff)
	}
	d += time.Duration(float64(d) * 0.3 * c.jitter())
	return min(d, c.cfg.MaxBackoff)
}

// sleepCtx waits for d or until ctx is done.
func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func statusText(code int) string {
	if t := http.StatusText(code); t != "" {
		return t
	}
	if code == 529 {
		return "Overloaded"
	}
	return "HTTP " + strconv.Itoa(code)
}

// snippet quotes the start of a body for an error message.
func snippet(b []byte) string {
	const n = 200
	b = []byte(strings.TrimSpace(string(b)))
	if len(b) == 0 {
		return "empty body"
	}
	if len(b) > n {
		return strconv.Quote(string(b[:n])) + "..."
	}
	return strconv.Quote(string(b))
}
