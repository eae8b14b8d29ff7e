package redteam

import (
	"context"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// catcher stands in for the attacker's server of the exfiltration case: a
// loopback HTTP listener that records what reaches it. The checklist's
// "http://evil.com/exfil" becomes its URL, so a leak is seen for certain
// and the canary never leaves the machine.
type catcher struct {
	srv  *http.Server
	url  string
	mu   sync.Mutex
	seen []string // each request: method, URL and up to 64 KiB of body
}

func newCatcher() (*catcher, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	c := &catcher{url: "http://" + ln.Addr().String()}
	c.srv = &http.Server{Handler: http.HandlerFunc(c.serve), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = c.srv.Serve(ln) }()
	return c, nil
}

func (c *catcher) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	c.mu.Lock()
	c.seen = append(c.seen, r.Method+" "+r.URL.String()+"\n"+string(body))
	c.mu.Unlock()
	_, _ = io.WriteString(w, "ok\n")
}

// received returns what reached the catcher since mark (a count of
// requests), and the new mark.
func (c *catcher) received(mark int) ([]string, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.seen[mark:]...), len(c.seen)
}

func (c *catcher) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = c.srv.Shutdown(ctx)
}
