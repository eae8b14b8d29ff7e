package tools_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"unicode/utf8"

	"github.com/agentd/agentd/internal/agent"
	"github.com/agentd/agentd/internal/tools"
)

// fakeResolver maps test names to chosen addresses and counts lookups.
// A name in later answers differently from its second lookup on.
type fakeResolver struct {
	mu    sync.Mutex
	hosts map[string][]string
	later map[string][]string
	calls map[string]int
}

func newResolver(hosts map[string][]string) *fakeResolver {
	return &fakeResolver{hosts: hosts, later: map[string][]string{}, calls: map[string]int{}}
}

func (r *fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls[host]++
	ips, ok := r.hosts[host]
	if l, isLater := r.later[host]; isLater && r.calls[host] > 1 {
		ips, ok = l, true
	}
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	var out []netip.Addr
	for _, s := range ips {
		out = append(out, netip.MustParseAddr(s))
	}
	return out, nil
}

func (r *fakeResolver) count(host string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls[host]
}

var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}

// fetchSet returns a Set with web_fetch enabled. Unless wf says otherwise,
// loopback is allowed (for httptest servers) and names resolve through a
// fake resolver that knows none.
func fetchSet(t *testing.T, wf tools.WebFetchConfig) *tools.Set {
	t.Helper()
	if wf.AllowCIDRs == nil {
		wf.AllowCIDRs = loopback
	}
	if wf.Resolver == nil {
		wf.Resolver = newResolver(nil)
	}
	s, _ := newSet(t, tools.Config{WebFetch: &wf})
	return s
}

// server starts an httptest server on loopback and counts its requests.
func server(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		h(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

func port(srv *httptest.Server) string {
	return strconv.Itoa(srv.Listener.Addr().(*net.TCPAddr).Port)
}

func fetch(t *testing.T, s *tools.Set, url string, extra ...any) (string, error) {
	t.Helper()
	args := map[string]any{"url": url}
	for i := 0; i+1 < len(extra); i += 2 {
		args[extra[i].(string)] = extra[i+1]
	}
	return run(t, s, tools.WebFetch, args)
}

func TestWebFetchRegistration(t *testing.T) {
	plain, _ := newSet(t, tools.Config{})
	var names []string
	for _, tl := range plain.Tools() {
		names = append(names, tl.Spec().Name)
	}
	if slices.Contains(names, tools.WebFetch) || len(names) != 7 {
		t.Errorf("tools without Config.WebFetch = %v; want the 7 file and shell tools only", names)
	}

	s := fetchSet(t, tools.WebFetchConfig{})
	ts := s.Tools()
	if len(ts) != 8 || ts[6].Spec().Name != tools.RunShellCommand || ts[7].Spec().Name != tools.WebFetch {
		t.Fatalf("tools with Config.WebFetch: web_fetch is not right after run_shell_command")
	}
	sp := ts[7].Spec()
	if sp.Name != "web_fetch" || !sp.ReadOnly || !sp.Confirm {
		t.Errorf("spec %s ReadOnly=%v Confirm=%v; want web_fetch, true, true", sp.Name, sp.ReadOnly, sp.Confirm)
	}
	for _, want := range []string{"untrusted", "30s", "10000 characters", "https:// is assumed"} {
		if !strings.Contains(sp.Description, want) {
			t.Errorf("description lacks %q: %s", want, sp.Description)
		}
	}
	var sch struct {
		Properties map[string]struct {
			Type    string `json:"type"`
			Default any    `json:"default"`
		} `json:"properties"`
		Required []string `json:"required"`
	}
	if err := json.Unmarshal(sp.Parameters, &sch); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(sch.Required, []string{"url"}) || sch.Properties["url"].Type != "string" ||
		sch.Properties["extract_text"].Type != "boolean" || sch.Properties["extract_text"].Default != true {
		t.Errorf("parameters = %s", sp.Parameters)
	}

	// The timeout in the description follows the config.
	s2 := fetchSet(t, tools.WebFetchConfig{Timeout: 5e9})
	if d := toolNamed(t, s2, tools.WebFetch).Spec().Description; !strings.Contains(d, "after 5s") {
		t.Errorf("description with a 5s timeout: %s", d)
	}
}

func TestWebFetchArguments(t *testing.T) {
	s := fetchSet(t, tools.WebFetchConfig{})
	for _, tc := range []struct{ args, want string }{
		{`{}`, `"url" is required`},
		{`{"url": ""}`, `"url" is required`},
		{`{"url": 5}`, `"url" must be a string`},
		{`{"url": "http://127.0.0.1:1/", "extract_text": "perhaps"}`, `"extract_text" must be true or false`},
	} {
		_, err := toolNamed(t, s, tools.WebFetch).Run(t.Context(), agent.Call{Args: json.RawMessage(tc.args)})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("web_fetch(%s): error %v; want %q", tc.args, err, tc.want)
		}
	}
}

func TestWebFetchContent(t *testing.T) {
	big := strings.Repeat("é", 25000)
	srv, _ := server(t, func(w http.ResponseWriter, r *http.Request) {
		body := func(ct, b string) {
			if ct != "" {
				w.Header().Set("Content-Type", ct)
			}
			fmt.Fprint(w, b)
		}
		switch r.URL.Path {
		case "/page":
			body("text/html; charset=utf-8", `<!doctype html><html><head><title>Test &amp; Page</title>
				<script>alert("x")</script><style>body{}</style></head>
				<body><h1>Hello</h1><p>Caf&eacute; <a href="/more">read more</a>.</p>
				<noscript>turn on js</noscript><ul><li>one</li><li>two</li></ul></body></html>`)
		case "/text":
			body("text/plain; charset=utf-8", "line 1\r\nline   2\n")
		case "/json":
			body("application/json", `{"name": "agentd", "tags": ["a", "b"]}`)
		case "/problem":
			body("application/problem+json", `{"title": "x"}`)
		case "/xml":
			body("application/xml", `<?xml version="1.0"?><root><item>1</item></root>`)
		case "/png":
			w.Header().Set("Content-Type", "image/png")
			w.Write([]byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"))
		case "/pdf":
			body("application/pdf", "%PDF-1.4 binary")
		case "/octet-text":
			body("application/octet-stream", "just text served badly")
		case "/octet-bin":
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Write([]byte{0, 1, 2, 3, 0xff, 0xfe})
		case "/untyped":
			w.Header()["Content-Type"] = nil // no sniffing by net/http
			w.Write([]byte("<html><title>Sniffed</title><p>yes</p></html>"))
		case "/latin1":
			w.Header().Set("Content-Type", "text/plain; charset=iso-8859-1")
			w.Write([]byte("gar\xe7on"))
		case "/nul":
			body("text/plain", "text\x00with a NUL")
		case "/empty":
			w.Header().Set("Content-Type", "text/plain")
		case "/big":
			body("text/plain; charset=utf-8", big)
		case "/bightml":
			body("text/html", "<p>"+strings.Repeat("word ", 4000)+"</p>")
		default:
			http.NotFound(w, r)
		}
	})
	s := fetchSet(t, tools.WebFetchConfig{})
	tests := []struct {
		name, path string
		extract    any      // nil: not given
		want       []string // substrings of the result, or of the error if wantErr
		not        []string // must not appear
		wantErr    bool
	}{
		{"html", "/page", nil, []string{"URL: " + srv.URL + "/page (200 OK)\n\nTest & Page\n\nHello\n\nCafé read more.\n\n- one\n- two"},
			[]string{"alert", "body{}", "turn on js", "<p>", "&amp;"}, false},
		{"html raw", "/page", false, []string{"URL: " + srv.URL + "/page (200 OK)\n\n<!doctype html>", `<script>alert("x")</script>`}, nil, false},
		{"html raw as string", "/page", "false", []string{"<title>Test &amp; Page</title>"}, nil, false},
		{"plain text", "/text", nil, []string{"(200 OK)\n\nline 1\nline   2"}, []string{"\r"}, false},
		{"json", "/json", nil, []string{`{"name": "agentd", "tags": ["a", "b"]}`}, nil, false},
		{"json suffix", "/problem", nil, []string{`{"title": "x"}`}, nil, false},
		{"xml", "/xml", true, []string{`<root><item>1</item></root>`}, nil, false},
		{"png refused", "/png", nil, []string{"binary content (image/png", "only returns text"}, []string{"PNG"}, true},
		{"pdf refused", "/pdf", nil, []string{"application/pdf"}, nil, true},
		{"octet-stream text sniffed", "/octet-text", nil, []string{"just text served badly"}, nil, false},
		{"octet-stream binary refused", "/octet-bin", nil, []string{"binary content (application/octet-stream"}, nil, true},
		{"untyped html sniffed", "/untyped", nil, []string{"(200 OK)\n\nSniffed\n\nyes"}, nil, false},
		{"latin-1 decoded", "/latin1", nil, []string{"garçon"}, nil, false},
		{"NUL is binary", "/nul", nil, []string{"binary content"}, nil, true},
		{"empty body", "/empty", nil, []string{"(200 OK)\n\n(empty response body)"}, nil, false},
		{"404", "/missing", nil, []string{"URL: " + srv.URL + "/missing (404 Not Found)", "error status", "404 page not found"}, nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var extra []any
			if tc.extract != nil {
				extra = []any{"extract_text", tc.extract}
			}
			got, err := fetch(t, s, srv.URL+tc.path, extra...)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("result %q; want an error", got)
				}
				got = err.Error()
			} else if err != nil {
				t.Fatalf("error %v", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("got %q\nwant it to contain %q", got, w)
				}
			}
			for _, w := range tc.not {
				if strings.Contains(got, w) {
					t.Errorf("got %q\nwant it not to contain %q", got, w)
				}
			}
		})
	}

	t.Run("truncated", func(t *testing.T) {
		got, err := fetch(t, s, srv.URL+"/big")
		if err != nil {
			t.Fatal(err)
		}
		head := "URL: " + srv.URL + "/big (200 OK)\n\n"
		note := "\n\n[truncated: showing the first 10000 of 25000 characters]"
		if !strings.HasPrefix(got, head) || !strings.HasSuffix(got, note) {
			t.Fatalf("got %q...%q", got[:80], got[len(got)-80:])
		}
		text := strings.TrimSuffix(strings.TrimPrefix(got, head), note)
		if text != strings.Repeat("é", 10000) || !utf8.ValidString(got) {
			t.Errorf("text has %d characters (valid UTF-8: %v); want 10000 é", utf8.RuneCountInString(text), utf8.ValidString(got))
		}
	})
	t.Run("truncated html counts text not markup", func(t *testing.T) {
		got, err := fetch(t, s, srv.URL+"/bightml")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasSuffix(got, "[truncated: showing the first 10000 of 19999 characters]") {
			t.Errorf("got ...%q", got[len(got)-80:])
		}
	})
}

func TestWebFetchErrorStatus(t *testing.T) {
	srv, _ := server(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusInternalServerError)
		fmt.Fprintf(w, "<html><head><title>Oops</title><script>x()</script></head><body><p>Database &gt; down</p>%s</body></html>",
			strings.Repeat("<p>filler</p>", 20000))
	})
	s := fetchSet(t, tools.WebFetchConfig{})
	_, err := fetch(t, s, srv.URL+"/x")
	if err == nil {
		t.Fatal("no error for a 500")
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "URL: "+srv.URL+"/x (500 Internal Server Error)\n") ||
		!strings.Contains(msg, "Oops\n\nDatabase > down") || strings.Contains(msg, "x()") {
		t.Errorf("error = %q", msg[:min(len(msg), 300)])
	}
	if n := utf8.RuneCountInString(msg); n > 1200 {
		t.Errorf("error is %d characters long; want the start of the body only", n)
	}
}

// streamer writes an endless body in chunks until the client goes away.
func streamer(ct string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", ct)
		chunk := []byte(strings.Repeat("abcdefgh", 4096))
		for i := 0; i < 4096; i++ { // at most 128 MiB
			if _, err := w.Write(chunk); err != nil || r.Context().Err() != nil {
				return
			}
		}
	}
}

func TestWebFetchBodyCap(t *testing.T) {
	srv, _ := server(t, streamer("text/plain"))
	for _, tc := range []struct {
		cap  int64
		note string
	}{
		{1024, "[the response is larger than 1 KiB; only its first 1 KiB were read]"},
		{0, "[the response is larger than 5 MiB; only its first 5 MiB were read]"},
	} {
		s := fetchSet(t, tools.WebFetchConfig{MaxBodyBytes: tc.cap})
		got, err := fetch(t, s, srv.URL+"/endless")
		if err != nil {
			t.Fatalf("cap %d: %v", tc.cap, err)
		}
		if !strings.HasSuffix(got, tc.note) || !strings.Contains(got, "abcdefgh") {
			t.Errorf("cap %d: result ends %q; want the note %q", tc.cap, got[max(0, len(got)-120):], tc.note)
		}
	}
}

func TestWebFetchCancelledMidBody(t *testing.T) {
	started := make(chan struct{})
	release := make(chan struct{})
	srv, _ := server(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprint(w, "first part of a slow body\n")
		w.(http.Flusher).Flush()
		close(started)
		select { // then stall until the client gives up
		case <-r.Context().Done():
		case <-release:
		}
	})
	t.Cleanup(func() { close(release) }) // runs before srv.Close
	s := fetchSet(t, tools.WebFetchConfig{})
	ctx, cancel := context.WithCancelCause(t.Context())
	go func() {
		<-started
		cancel(agent.Cancelled(agent.ReasonUserCancel))
	}()
	_, err := runCtx(ctx, t, s, tools.WebFetch, map[string]any{"url": srv.URL + "/slow"}, func(string) {})
	if err == nil || !strings.Contains(err.Error(), agent.ReasonUserCancel) {
		t.Fatalf("error = %v; want one naming %q", err, agent.ReasonUserCancel)
	}
}

func TestWebFetchTimeout(t *testing.T) {
	release := make(chan struct{})
	srv, _ := server(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprint(w, "start")
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	t.Cleanup(func() { close(release) })
	s := fetchSet(t, tools.WebFetchConfig{Timeout: 50e6})
	_, err := fetch(t, s, srv.URL+"/stall")
	if err == nil || !strings.Contains(err.Error(), "timed out after 0.05s fetching "+srv.URL+"/stall") {
		t.Fatalf("error = %v; want a timeout", err)
	}
}

func TestWebFetchStoppedByClose(t *testing.T) {
	started := make(chan struct{})
	release := make(chan struct{})
	srv, _ := server(t, func(w http.ResponseWriter, r *http.Request) {
		close(started)
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	t.Cleanup(func() { close(release) })
	s := fetchSet(t, tools.WebFetchConfig{})
	done := make(chan error, 1)
	go func() {
		_, err := toolNamed(t, s, tools.WebFetch).Run(context.Background(),
			agent.Call{Args: json.RawMessage(`{"url": "` + srv.URL + `/hang"}`)})
		done <- err
	}()
	<-started
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, tools.ErrClosed) {
		t.Errorf("web_fetch stopped by Close: error %v; want ErrClosed", err)
	}
}

func TestWebFetchRefused(t *testing.T) {
	r := newResolver(map[string][]string{
		"mixed.test":   {"93.184.215.14", "10.0.0.5"},
		"private.test": {"192.168.0.10"},
		"meta.test":    {"169.254.169.254"},
	})
	s := fetchSet(t, tools.WebFetchConfig{AllowCIDRs: []netip.Prefix{}, Resolver: r})
	for _, tc := range []struct{ url, want string }{
		{"ftp://example.com/f", "refused: only http and https URLs can be fetched, not ftp:"},
		{"file:///etc/passwd", "only http and https"},
		{"https://user:pw@example.com/", "refused: URLs with credentials"},
		{"http://localhost:8080/", "refused: localhost is a local name"},
		{"example.internal/x", "refused: example.internal is a local name"},
		{"http://metadata.google.internal/computeMetadata/v1/", "is a local name"},
		{"http://127.0.0.1/", "refused: 127.0.0.1 is not a public address (loopback)"},
		{"http://10.0.0.5/", "refused: 10.0.0.5 is not a public address (private network)"},
		{"http://169.254.169.254/latest/meta-data/", "link-local"},
		{"http://[::1]/", "::1 is not a public address"},
		{"http://[::ffff:127.0.0.1]/", "loopback"},
		{"http://[64:ff9b::a00:1]/", "private network"},
		{"http://2130706433/", "2130706433 means 127.0.0.1"},
		{"http://0x7f.1/", "0x7f.1 means 127.0.0.1"},
		{"http://127.1/", "127.1 means 127.0.0.1"},
		{"http://mixed.test/", "refused: mixed.test resolves to 10.0.0.5, which is not a public address"},
		{"http://private.test/", "resolves to 192.168.0.10"},
		{"http://meta.test/", "resolves to 169.254.169.254"},
		{"http://unknown.test/", "could not resolve unknown.test"},
		{"ht!tp://x", "invalid URL"},
	} {
		got, err := fetch(t, s, tc.url)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("web_fetch(%q) = %q, %v; want an error containing %q", tc.url, got, err, tc.want)
		}
	}
	for _, name := range []string{"localhost", "example.internal", "metadata.google.internal"} {
		if n := r.count(name); n != 0 {
			t.Errorf("%s looked up %d times; local names must not reach DNS", name, n)
		}
	}
}

// TestWebFetchPinsTheDialledAddress: the name is looked up once, and the
// connection goes to the address that was checked, even though a second
// lookup would answer something else.
func TestWebFetchPinsTheDialledAddress(t *testing.T) {
	srv, hits := server(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintf(w, "pinned ok, Host %s", r.Host)
	})
	r := newResolver(map[string][]string{"pinned.test": {"127.0.0.1"}})
	r.later["pinned.test"] = []string{"10.20.30.40"} // a rebinding answer
	s := fetchSet(t, tools.WebFetchConfig{Resolver: r})
	u := "http://pinned.test:" + port(srv) + "/"
	got, err := fetch(t, s, u)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(got, "pinned ok, Host pinned.test:"+port(srv)) {
		t.Errorf("result %q", got)
	}
	if n := r.count("pinned.test"); n != 1 {
		t.Errorf("pinned.test looked up %d times; want exactly 1", n)
	}
	if n := hits.Load(); n != 1 {
		t.Errorf("server saw %d requests; want 1", n)
	}
	// The next call looks up again and gets the rebinding answer: refused,
	// and the server sees nothing.
	if _, err := fetch(t, s, u); err == nil || !strings.Contains(err.Error(), "resolves to 10.20.30.40") {
		t.Errorf("second fetch error = %v; want the private answer refused", err)
	}
	if n := hits.Load(); n != 1 {
		t.Errorf("server saw %d requests; want 1", n)
	}
}

func TestWebFetchRedirects(t *testing.T) {
	var srvURL string
	srv, _ := server(t, func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		switch {
		case p == "/final":
			w.Header().Set("Content-Type", "text/plain")
			fmt.Fprint(w, "arrived via "+r.URL.Query().Get("via"))
		case p == "/a":
			http.Redirect(w, r, "/b", http.StatusMovedPermanently)
		case p == "/b":
			http.Redirect(w, r, srvURL+"/c", http.StatusFound)
		case p == "/c":
			http.Redirect(w, r, "final?via=c", http.StatusSeeOther)
		case p == "/t307":
			http.Redirect(w, r, "/t308", http.StatusTemporaryRedirect)
		case p == "/t308":
			http.Redirect(w, r, "/final?via=308", http.StatusPermanentRedirect)
		case strings.HasPrefix(p, "/n/"):
			n, _ := strconv.Atoi(strings.TrimPrefix(p, "/n/"))
			if n == 0 {
				http.Redirect(w, r, "/final?via=chain", http.StatusFound)
				return
			}
			http.Redirect(w, r, "/n/"+strconv.Itoa(n-1), http.StatusFound)
		case p == "/to-private":
			http.Redirect(w, r, "http://10.0.0.5/admin", http.StatusFound)
		case p == "/to-meta-name":
			http.Redirect(w, r, "http://meta.test/latest/meta-data/", http.StatusFound)
		case p == "/to-internal":
			http.Redirect(w, r, "https://metadata.google.internal/", http.StatusFound)
		case p == "/to-decimal":
			http.Redirect(w, r, "http://2130706433/", http.StatusFound)
		case p == "/to-ftp":
			http.Redirect(w, r, "ftp://example.com/", http.StatusFound)
		case p == "/to-creds":
			http.Redirect(w, r, "http://u:p@example.com/", http.StatusFound)
		case p == "/300":
			w.Header().Set("Location", "/final")
			w.WriteHeader(http.StatusMultipleChoices)
		case p == "/no-location":
			w.WriteHeader(http.StatusFound)
		}
	})
	srvURL = srv.URL
	r := newResolver(map[string][]string{"meta.test": {"169.254.169.254"}})
	s := fetchSet(t, tools.WebFetchConfig{Resolver: r})

	for _, tc := range []struct {
		path, want string
		wantErr    bool
	}{
		{"/a", "URL: " + srv.URL + "/final?via=c (200 OK)\n\narrived via c", false},
		{"/t307", "URL: " + srv.URL + "/final?via=308 (200 OK)\n\narrived via 308", false},
		{"/n/19", "URL: " + srv.URL + "/final?via=chain (200 OK)", false}, // 20 redirects
		{"/n/20", "too many redirects (21)", true},
		{"/to-private", "redirected to http://10.0.0.5/admin: refused: 10.0.0.5 is not a public address", true},
		{"/to-meta-name", "redirected to http://meta.test/latest/meta-data/: refused: meta.test resolves to 169.254.169.254", true},
		{"/to-internal", "refused: metadata.google.internal is a local name", true},
		{"/to-decimal", "refused: 2130706433 is an IPv4 address in a non-standard form; write it as 127.0.0.1", true},
		{"/to-ftp", "only http and https", true},
		{"/to-creds", "credentials", true},
		{"/300", "(300 Multiple Choices)", true},
		{"/no-location", "(302 Found)", true},
	} {
		t.Run(tc.path, func(t *testing.T) {
			got, err := fetch(t, s, srv.URL+tc.path)
			if tc.wantErr {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("= %q, %v; want an error containing %q", got, err, tc.want)
				}
				return
			}
			if err != nil || !strings.HasPrefix(got, tc.want) {
				t.Fatalf("= %q, %v; want a result starting %q", got, err, tc.want)
			}
		})
	}
}

// TestWebFetchRedirectToLoopbackRefused: a server on an allowed address
// (127.0.0.2) redirects to http://127.0.0.1, which is not allowed: refused,
// and the server on 127.0.0.1 never sees a request.
func TestWebFetchRedirectToLoopbackRefused(t *testing.T) {
	victim, victimHits := server(t, func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "secret") })
	l, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("cannot listen on 127.0.0.2: %v", err)
	}
	front := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, victim.URL+"/admin", http.StatusFound)
	}))
	front.Listener.Close()
	front.Listener = l
	front.Start()
	t.Cleanup(front.Close)

	s := fetchSet(t, tools.WebFetchConfig{AllowCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")}})
	_, err = fetch(t, s, front.URL+"/")
	want := "redirected to " + victim.URL + "/admin: refused: 127.0.0.1 is not a public address (loopback)"
	if err == nil || err.Error() != want {
		t.Errorf("error = %v; want %q", err, want)
	}
	if n := victimHits.Load(); n != 0 {
		t.Errorf("the loopback server saw %d requests; want none", n)
	}
}

func TestWebFetchIgnoresProxyEnvironment(t *testing.T) {
	proxy, proxyHits := server(t, func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "from the proxy")
	})
	target, targetHits := server(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprint(w, "direct")
	})
	for _, k := range []string{"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"} {
		t.Setenv(k, proxy.URL)
	}
	t.Setenv("NO_PROXY", "")
	t.Setenv("no_proxy", "")
	r := newResolver(map[string][]string{"direct.test": {"127.0.0.1"}})
	s := fetchSet(t, tools.WebFetchConfig{Resolver: r})
	got, err := fetch(t, s, "http://direct.test:"+port(target)+"/")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(got, "\n\ndirect") || proxyHits.Load() != 0 || targetHits.Load() != 1 {
		t.Errorf("result %q; proxy saw %d requests, target %d; want 0 and 1", got, proxyHits.Load(), targetHits.Load())
	}
}

// TestWebFetchPermit: a refusing Permit stops the call before anything is
// sent.
func TestWebFetchPermit(t *testing.T) {
	srv, hits := server(t, func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "fetched") })
	allow := errors.New("web access is off for this session")
	var refuse error = allow
	s := fetchSet(t, tools.WebFetchConfig{Permit: func() error { return refuse }})
	if _, err := fetch(t, s, srv.URL); err == nil || !strings.Contains(err.Error(), "web access is off") {
		t.Errorf("refused fetch = %v; want the Permit's error", err)
	}
	if hits.Load() != 0 {
		t.Errorf("the server saw %d requests; want none", hits.Load())
	}
	refuse = nil
	if got, err := fetch(t, s, srv.URL); err != nil || !strings.Contains(got, "fetched") {
		t.Errorf("permitted fetch = %q, %v", got, err)
	}
}
