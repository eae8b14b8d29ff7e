package acp

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// Transport carries whole JSON-RPC messages. Read is called from one
// goroutine at a time, Write from one goroutine at a time (the connection
// serialises writes), and the two may run at once.
type Transport interface {
	// Read returns the next message; io.EOF when the peer has gone. A
	// message over the size limit is reported as a *TooLargeError, after
	// which reading goes on with the next message.
	Read(ctx context.Context) ([]byte, error)
	// Write sends one message.
	Write(ctx context.Context, msg []byte) error
	// Close releases the transport; a blocked Read may or may not return.
	Close() error
}

// TooLargeError reports a message over the size limit; it was skipped.
type TooLargeError struct{ Limit int }

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("a message is longer than the limit of %d bytes", e.Limit)
}

// DefaultMaxMessageBytes bounds one message, and is the most a Config or
// NewStdio may allow: the longest line the Go SDK reads (10 MiB with its
// newline).
const DefaultMaxMessageBytes = sdkMaxLine

// NewStdio returns the stdio transport of ACP over r and w: UTF-8 JSON-RPC
// messages, one per line ("\n", a trailing "\r" is ignored), blank lines
// skipped. Lines longer than max bytes (0 or more than
// DefaultMaxMessageBytes: DefaultMaxMessageBytes) are skipped and
// reported. Close closes neither r nor w.
//
// The SDK could read r itself, but Connection.receive ends the whole
// connection on a line over its limit instead of refusing that one
// message, and reads lines the adapter must see first (wire.go).
func NewStdio(r io.Reader, w io.Writer, max int) Transport {
	if max <= 0 || max > DefaultMaxMessageBytes {
		max = DefaultMaxMessageBytes
	}
	return &lines{r: bufio.NewReaderSize(r, 64<<10), w: w, max: max}
}

type lines struct {
	r   *bufio.Reader
	max int

	mu sync.Mutex
	w  io.Writer
}

func (l *lines) Read(ctx context.Context) ([]byte, error) {
	for {
		line, err := l.readLine()
		if err != nil {
			return nil, err
		}
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		return line, nil
	}
}

// readLine returns the next line without its "\n"; a last line without one
// counts. A line over the limit is consumed and reported.
func (l *lines) readLine() ([]byte, error) {
	var buf []byte
	tooLong := false
	for {
		chunk, err := l.r.ReadSlice('\n')
		if !tooLong {
			if len(buf)+len(chunk) > l.max+1 { // +1: the newline itself
				tooLong, buf = true, nil
			} else {
				buf = append(buf, chunk...)
			}
		}
		switch {
		case err == nil:
			if tooLong {
				return nil, &TooLargeError{Limit: l.max}
			}
			return buf[:len(buf)-1], nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && len(buf) > 0 && !tooLong:
			return buf, nil
		default:
			return nil, err
		}
	}
}

func (l *lines) Write(_ context.Context, msg []byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	line := make([]byte, 0, len(msg)+1)
	line = append(append(line, msg...), '\n')
	_, err := l.w.Write(line)
	return err
}

func (l *lines) Close() error { return nil }

// wsTransport carries one message per WebSocket text frame.
type wsTransport struct {
	c            *websocket.Conn
	writeTimeout time.Duration
}

func (t *wsTransport) Read(ctx context.Context) ([]byte, error) {
	_, data, err := t.c.Read(ctx)
	if err != nil {
		switch websocket.CloseStatus(err) {
		case websocket.StatusNormalClosure, websocket.StatusGoingAway, websocket.StatusNoStatusRcvd:
			return nil, io.EOF
		}
		return nil, err
	}
	return data, nil
}

func (t *wsTransport) Write(ctx context.Context, msg []byte) error {
	ctx, cancel := context.WithTimeout(ctx, t.writeTimeout)
	defer cancel()
	return t.c.Write(ctx, websocket.MessageText, msg)
}

// Close starts the close handshake and waits for it at most a second: a
// peer that does not answer must not hold up a shutdown (the handshake goes
// on, or times out, by itself).
func (t *wsTransport) Close() error {
	done := make(chan error, 1)
	go func() { done <- t.c.Close(websocket.StatusNormalClosure, "") }()
	select {
	case err := <-done:
		return err
	case <-time.After(time.Second):
		return nil
	}
}
