package tools

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
)

// mapResolver answers from a fixed table and counts lookups.
type mapResolver struct {
	mu    sync.Mutex
	hosts map[string][]string
	calls map[string]int
}

func newMapResolver(hosts map[string][]string) *mapResolver {
	return &mapResolver{hosts: hosts, calls: map[string]int{}}
}

func (r *mapResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls[host]++
	ips, ok := r.hosts[host]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	var out []netip.Addr
	for _, s := range ips {
		out = append(out, netip.MustParseAddr(s))
	}
	return out, nil
}

func (r *mapResolver) total() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, c := range r.calls {
		n += c
	}
	return n
}

func prefixes(t *testing.T, s string) []netip.Prefix {
	t.Helper()
	p, err := ParseAllowCIDRs(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestGuardAddresses judges IP literals in every form a URL can carry them:
// no DNS lookup may happen for any of them.
func TestGuardAddresses(t *testing.T) {
	tests := []struct {
		host string
		want string // substring of the error; "" means allowed
	}{
		// Blocked IPv4 ranges.
		{"127.0.0.1", "127.0.0.1 is not a public address (loopback)"},
		{"127.255.255.254", "loopback"},
		{"10.0.0.5", "10.0.0.5 is not a public address (private network)"},
		{"172.16.0.1", "private network"},
		{"172.31.255.255", "private network"},
		{"192.168.1.1", "private network"},
		{"169.254.169.254", "link-local"},
		{"0.0.0.0", "this network"},
		{"0.1.2.3", "this network"},
		{"100.64.0.1", "CGNAT"},
		{"100.127.255.255", "CGNAT"},
		{"192.0.0.8", "IETF protocol assignments"},
		{"192.0.2.1", "documentation"},
		{"198.18.0.1", "benchmarking"},
		{"198.19.255.255", "benchmarking"},
		{"198.51.100.7", "documentation"},
		{"203.0.113.9", "documentation"},
		{"224.0.0.1", "multicast"},
		{"239.255.255.250", "multicast"},
		{"240.0.0.1", "reserved"},
		{"255.255.255.255", "broadcast"},
		{"127.0.0.1.", "loopback"}, // trailing dot
		// Blocked IPv6 ranges.
		{"::1", "loopback"},
		{"::", "unspecified"},
		{"fe80::1", "link-local"},
		{"fe80::1%eth0", "scoped"},
		{"fc00::1", "unique local"},
		{"fd12:3456::1", "unique local"},
		{"ff02::1", "multicast"},
		{"2001:db8::1", "documentation"},
		{"2001::1", "Teredo"},
		{"2001:0:4136:e378:8000:63bf:3fff:fdd2", "Teredo"},
		{"::127.0.0.1", "IPv4-compatible"},
		{"100::1", "discard"},
		{"fec0::1", "site-local"},
		{"3fff::1", "documentation"},
		{"64:ff9b:1::1", "NAT64"},
		{"4000::1", "reserved"},
		// IPv6 forms embedding a blocked IPv4 address.
		{"::ffff:127.0.0.1", "loopback"},
		{"::ffff:7f00:1", "loopback"},
		{"::ffff:10.0.0.1", "private network"},
		{"::ffff:169.254.169.254", "link-local"},
		{"2002:7f00:1::", "loopback"},
		{"2002:a00:1::1", "private network"},
		{"64:ff9b::7f00:1", "loopback"},
		{"64:ff9b::10.0.0.1", "private network"},
		// Odd IPv4 forms, read the way inet_aton reads them.
		{"2130706433", "2130706433 means 127.0.0.1"},
		{"017700000001", "means 127.0.0.1"},
		{"0x7f000001", "means 127.0.0.1"},
		{"0X7F000001", "means 127.0.0.1"},
		{"127.1", "127.1 means 127.0.0.1"},
		{"127.0.1", "means 127.0.0.1"},
		{"0x7f.1", "0x7f.1 means 127.0.0.1"},
		{"0177.0.0.1", "means 127.0.0.1"},
		{"127.000.000.001", "means 127.0.0.1"},
		{"10.1", "means 10.0.0.1"},
		{"0x0a.0.0.1", "means 10.0.0.1"},
		{"0", "means 0.0.0.0"},
		{"3232235777", "means 192.168.1.1"},
		{"0xA9FEA9FE", "means 169.254.169.254"},
		{"2130706433.", "means 127.0.0.1"},
		// Odd forms of public addresses are refused too, naming the real form.
		{"1.1", "non-standard form; write it as 1.0.0.1"},
		{"0x5db8d70e", "write it as 93.184.215.14"},
		// Numeric hosts that are not addresses at all.
		{"1.2.3.4.5", "not a valid host name"},
		{"256.1.1.1", "not a valid host name"},
		{"08.1.1.1", "not a valid host name"},
		{"0x", "not a valid host name"},
		{"4294967296", "not a valid host name"},
		// IDNA maps fullwidth digits and dots to ASCII ones.
		{"１２７．０．０．１", "not a public address (loopback)"},
		{"９３．１８４．２１５．１４", "unusual characters"},
		// Allowed: public addresses and the edges of blocked ranges.
		{"93.184.215.14", ""},
		{"8.8.8.8", ""},
		{"1.1.1.1", ""},
		{"9.255.255.255", ""},
		{"11.0.0.0", ""},
		{"100.63.255.255", ""},
		{"100.128.0.0", ""},
		{"172.15.255.255", ""},
		{"172.32.0.1", ""},
		{"192.0.1.1", ""},
		{"192.169.0.1", ""},
		{"198.17.255.255", ""},
		{"198.20.0.0", ""},
		{"223.255.255.255", ""},
		{"2606:4700::1", ""},
		{"2a00:1450:4001::1", ""},
		{"::ffff:93.184.215.14", ""},
		{"2002:5db8:d70e::1", ""},
		{"64:ff9b::5db8:d70e", ""},
		{"2001:4860:4860::8888", ""},
	}
	r := newMapResolver(nil)
	g := &guard{resolver: r}
	for _, tc := range tests {
		t.Run(tc.host, func(t *testing.T) {
			addrs, err := g.resolve(t.Context(), tc.host)
			if tc.want == "" {
				if err != nil || len(addrs) != 1 {
					t.Fatalf("resolve(%q) = %v, %v; want it allowed", tc.host, addrs, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("resolve(%q) = %v, %v; want an error containing %q", tc.host, addrs, err, tc.want)
			}
			if !strings.HasPrefix(err.Error(), "refused: ") {
				t.Errorf("error %q does not start with \"refused: \"", err)
			}
		})
	}
	if n := r.total(); n != 0 {
		t.Errorf("%d DNS lookups for IP literals; want none", n)
	}
}

func TestGuardNames(t *testing.T) {
	r := newMapResolver(map[string][]string{
		"example.com":           {"93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"},
		"localhost.example.com": {"93.184.215.14"},
		"internal.example.com":  {"93.184.215.14"},
		"mixed.example.com":     {"93.184.215.14", "10.0.0.5"},
		"mixed6.example.com":    {"2606:4700::1", "fd00::1"},
		"mapped.example.com":    {"::ffff:93.184.215.14"},
		"mappedbad.example.com": {"::ffff:10.1.2.3"},
		"meta.example.com":      {"169.254.169.254"},
		"loop.example.com":      {"127.0.0.1"},
		"nat64.example.com":     {"64:ff9b::a9fe:a9fe"},
		"empty.example.com":     {},
	})
	tests := []struct {
		host   string
		want   string // substring of the error; "" means allowed
		lookup bool   // whether a DNS lookup is expected
	}{
		{"example.com", "", true},
		{"EXAMPLE.COM", "", true},
		{"localhost.example.com", "", true},
		{"internal.example.com", "", true},
		{"mapped.example.com", "", true},
		{"mixed.example.com", "mixed.example.com resolves to 10.0.0.5, which is not a public address (private network)", true},
		{"mixed6.example.com", "resolves to fd00::1", true},
		{"mappedbad.example.com", "private network", true},
		{"meta.example.com", "resolves to 169.254.169.254", true},
		{"loop.example.com", "loopback", true},
		{"nat64.example.com", "link-local", true},
		{"empty.example.com", "could not resolve empty.example.com: no addresses", true},
		{"nowhere.example.com", "could not resolve nowhere.example.com", true},
		// Local names never reach DNS.
		{"localhost", "refused: localhost is a local name", false},
		{"LOCALHOST.", "is a local name", false},
		{"localhost.localdomain", "is a local name", false},
		{"metadata.google.internal", "is a local name", false},
		{"Metadata.Google.Internal.", "is a local name", false},
		{"foo.localhost", "is a local name", false},
		{"printer.local", "is a local name", false},
		{"a.b.localdomain", "is a local name", false},
		{"example.internal", "refused: example.internal is a local name", false},
		{"svc.ns.svc.cluster.local", "is a local name", false},
		{"ｌｏｃａｌｈｏｓｔ", "is a local name", false},
	}
	g := &guard{resolver: r}
	for _, tc := range tests {
		t.Run(tc.host, func(t *testing.T) {
			before := r.total()
			addrs, err := g.resolve(t.Context(), tc.host)
			if tc.want == "" {
				if err != nil || len(addrs) == 0 {
					t.Fatalf("resolve(%q) = %v, %v; want it allowed", tc.host, addrs, err)
				}
			} else if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("resolve(%q) = %v, %v; want an error containing %q", tc.host, addrs, err, tc.want)
			}
			if got := r.total() - before; got != map[bool]int{false: 0, true: 1}[tc.lookup] {
				t.Errorf("%d lookups; want lookup=%v", got, tc.lookup)
			}
		})
	}
}

func TestGuardAllowCIDRs(t *testing.T) {
	r := newMapResolver(map[string][]string{
		"dev.example.com":   {"127.0.0.1"},
		"other.example.com": {"10.0.0.6"},
	})
	g := &guard{resolver: r, allow: prefixes(t, "127.0.0.0/8, 10.0.0.5")}
	for _, tc := range []struct {
		host string
		ok   bool
	}{
		{"127.0.0.1", true},
		{"127.9.9.9", true},
		{"::ffff:127.0.0.1", true},
		{"dev.example.com", true},
		{"10.0.0.5", true},
		{"10.0.0.6", false},
		{"other.example.com", false},
		{"::1", false},
		{"169.254.169.254", false},
		{"localhost", false}, // local names stay refused
		{"127.1", false},     // so do odd forms
		{"example.internal", false},
	} {
		_, err := g.resolve(t.Context(), tc.host)
		if (err == nil) != tc.ok {
			t.Errorf("resolve(%q) error = %v; want allowed=%v", tc.host, err, tc.ok)
		}
	}
}

func TestGuardControl(t *testing.T) {
	g := &guard{allow: prefixes(t, "127.0.0.1/32")}
	for _, tc := range []struct {
		addr string
		ok   bool
	}{
		{"127.0.0.1:80", true},
		{"93.184.215.14:443", true},
		{"[2606:4700::1]:443", true},
		{"127.0.0.2:80", false},
		{"10.0.0.1:80", false},
		{"[::1]:80", false},
		{"[::ffff:10.0.0.1]:80", false},
		{"garbage", false},
	} {
		if err := g.control("tcp", tc.addr, nil); (err == nil) != tc.ok {
			t.Errorf("control(%q) = %v; want allowed=%v", tc.addr, err, tc.ok)
		}
	}
}

func TestGuardCheckURL(t *testing.T) {
	g := &guard{resolver: newMapResolver(nil)}
	for _, tc := range []struct {
		raw  string
		want string // substring of the error; "" means accepted
	}{
		{"https://example.com/a?b=c", ""},
		{"http://example.com:8080/", ""},
		{"example.com/path", ""},
		{"HTTPS://Example.COM/", ""},
		{"http://93.184.215.14/", ""},
		{"http://[2606:4700::1]:8443/", ""},
		{"ftp://example.com/file", "refused: only http and https URLs can be fetched, not ftp:"},
		{"file:///etc/passwd", "only http and https"},
		{"gopher://example.com/", "only http and https"},
		{"https://user:secret@example.com/", "refused: URLs with credentials"},
		{"https://user@example.com/", "credentials"},
		{"https:///path", "no host"},
		{"https://example.com:0/", "bad port"},
		{"https://example.com:99999/", "bad port"},
		{"example.com/?next=http://x", "must start with http:// or https://"},
		{"http://localhost:8080/", "localhost is a local name"},
		{"http://127.0.0.1/", "127.0.0.1 is not a public address"},
		{"http://[::1]/", "::1 is not a public address"},
		{"http://[::ffff:127.0.0.1]/", "not a public address"},
		{"http://2130706433/", "means 127.0.0.1"},
		{"http://0x7f.1/", "means 127.0.0.1"},
		{"http://169.254.169.254/latest/meta-data/", "link-local"},
		{"http://[fe80::1%25eth0]/", "scoped"},
		{"https://metadata.google.internal/computeMetadata/v1/", "is a local name"},
	} {
		u, err := parseFetchURL(tc.raw)
		if err == nil {
			err = g.checkURL(u)
		}
		if tc.want == "" {
			if err != nil {
				t.Errorf("%q: %v; want it accepted", tc.raw, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v; want one containing %q", tc.raw, err, tc.want)
		}
	}
}

func TestWebFetchURLPrependsHTTPS(t *testing.T) {
	for raw, want := range map[string]string{
		"example.com":          "https://example.com",
		"example.com:8443/x":   "https://example.com:8443/x",
		"http://example.com/":  "http://example.com/",
		"https://example.com/": "https://example.com/",
	} {
		u, err := parseFetchURL(raw)
		if err != nil || u.String() != want {
			t.Errorf("parseFetchURL(%q) = %v, %v; want %s", raw, u, err, want)
		}
	}
	if _, err := parseFetchURL("http://exa mple.com/"); err == nil || !strings.Contains(err.Error(), "invalid URL") {
		t.Errorf("parseFetchURL with a space in the host: error %v; want invalid URL", err)
	}
}

func TestSSRFInetAton(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string // "" means invalid
	}{
		{"127.0.0.1", "127.0.0.1"},
		{"2130706433", "127.0.0.1"},
		{"0x7f000001", "127.0.0.1"},
		{"017700000001", "127.0.0.1"},
		{"127.1", "127.0.0.1"},
		{"127.0.1", "127.0.0.1"},
		{"0x7f.1", "127.0.0.1"},
		{"0x7f.0.0.0x1", "127.0.0.1"},
		{"1.2.65535", "1.2.255.255"},
		{"1.16777215", "1.255.255.255"},
		{"4294967295", "255.255.255.255"},
		{"0", "0.0.0.0"},
		{"00", "0.0.0.0"},
		{"1.2.65536", ""},
		{"1.16777216", ""},
		{"4294967296", ""},
		{"256.0.0.1", ""},
		{"1.2.3.256", ""},
		{"1.2.3.4.5", ""},
		{"08", ""},
		{"0x", ""},
		{"0xg", ""},
		{"", ""},
		{"1..2", ""},
	} {
		a, ok := inetAton(tc.in)
		got := ""
		if ok {
			got = a.String()
		}
		if got != tc.want {
			t.Errorf("inetAton(%q) = %q; want %q", tc.in, got, tc.want)
		}
	}
}

func TestSSRFParseAllowCIDRs(t *testing.T) {
	got, err := ParseAllowCIDRs(" 127.0.0.0/8,10.1.2.3  fd00::/8\t::1 ,, 192.168.1.7/16")
	if err != nil {
		t.Fatal(err)
	}
	want := "[127.0.0.0/8 10.1.2.3/32 fd00::/8 ::1/128 192.168.0.0/16]"
	if fmt.Sprint(got) != want {
		t.Errorf("ParseAllowCIDRs = %v; want %s", got, want)
	}
	if got, err := ParseAllowCIDRs(""); err != nil || got != nil {
		t.Errorf("ParseAllowCIDRs(\"\") = %v, %v; want nil, nil", got, err)
	}
	for _, bad := range []string{"10.0.0.0/33", "example.com", "10.0.0", "fe80::1%eth0"} {
		if _, err := ParseAllowCIDRs(bad); err == nil {
			t.Errorf("ParseAllowCIDRs(%q): no error", bad)
		}
	}
}

// TestWebFetchHTTPS fetches over TLS from a name the fake resolver maps to
// the test server: the scheme is prepended, the certificate is checked for
// the name (not the dialled IP), and the host is looked up once.
func TestWebFetchHTTPS(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintf(w, "secure hello from %s over %s", r.Host, r.Proto)
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the bad-certificate case logs a handshake error
	srv.StartTLS()
	defer srv.Close()
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	r := newMapResolver(map[string][]string{"example.com": {"127.0.0.1"}})
	f := newWebFetcher(WebFetchConfig{AllowCIDRs: prefixes(t, "127.0.0.0/8"), Resolver: r})
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	f.tlsConfig = &tls.Config{RootCAs: pool}

	got, err := f.fetch(t.Context(), fmt.Sprintf("example.com:%d/page", port), true)
	if err != nil {
		t.Fatalf("fetch: %v", err)
	}
	wantHead := fmt.Sprintf("URL: https://example.com:%d/page (200 OK)\n\n", port)
	if !strings.HasPrefix(got, wantHead) || !strings.Contains(got, "secure hello from example.com:") {
		t.Errorf("fetch = %q; want it to start %q and carry the body", got, wantHead)
	}
	if n := r.calls["example.com"]; n != 1 {
		t.Errorf("example.com looked up %d times; want 1", n)
	}

	// A name the certificate does not cover fails verification even though
	// it resolves to the same server.
	r.hosts["other.example.org"] = []string{"127.0.0.1"}
	_, err = f.fetch(t.Context(), fmt.Sprintf("https://other.example.org:%d/", port), true)
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("fetch with a name the certificate does not cover: %v; want a certificate error", err)
	}
}

func TestWebFetchCancelCauses(t *testing.T) {
	f := newWebFetcher(WebFetchConfig{Resolver: newMapResolver(nil)})
	ctx, cancel := context.WithCancelCause(t.Context())
	cancel(ErrClosed)
	if _, err := f.fetch(ctx, "http://93.184.215.14/", true); !errors.Is(err, ErrClosed) {
		t.Errorf("fetch after the Set closed: %v; want ErrClosed", err)
	}
}

func TestWebFetchHTMLText(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
	}{
		{"title first",
			`<html><head><title> The  Title </title><style>p{color:red}</style></head><body><p>Body text.</p></body></html>`,
			"The Title\n\nBody text."},
		{"script and style dropped",
			`<p>before</p><script>var x = "<p>not text</p>";</script><style>.a{}</style><noscript>enable js</noscript><p>after</p>`,
			"before\n\nafter"},
		{"entities decoded",
			`<p>Fish &amp; chips &lt;b&gt; caf&eacute; &#8364;5 &nbsp;x</p>`,
			"Fish & chips <b> café €5 x"},
		{"links keep their text",
			`<p>See <a href="https://example.com/docs">the docs</a> and <a href="/x"><b>this</b> page</a>.</p>`,
			"See the docs and this page."},
		{"white space collapsed",
			"<div>\n  lots   of\n\n\t space  </div>",
			"lots of space"},
		{"blocks break lines",
			`<div>one</div><div>two</div><h1>Head</h1><p>para</p>line<br>next`,
			"one\ntwo\n\nHead\n\npara\n\nline\nnext"},
		{"inline elements do not",
			`<p>a<span>b</span> <em>c</em><code>d</code></p>`,
			"ab cd"},
		{"lists",
			`<ul><li>first</li><li> second <ul><li>nested</li></ul></li></ul>`,
			"- first\n- second\n- nested"},
		{"tables",
			`<table><tr><th>k</th><th>v</th></tr><tr><td>a</td><td>1</td></tr></table>`,
			"k | v\na | 1"},
		{"pre kept",
			"<p>code:</p><pre>if x {\n    y()\n}</pre><p>end</p>",
			"code:\n\nif x {\n    y()\n}\n\nend"},
		{"hidden dropped",
			`<p>shown</p><div hidden>h1</div><div aria-hidden="true">h2</div><div style="display: none">h3</div><svg><title>icon</title><text>svg</text></svg><template><p>t</p></template>`,
			"shown"},
		{"no title", `<p>only</p>`, "only"},
		{"empty", ``, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := htmlText(tc.in); got != tc.want {
				t.Errorf("htmlText(%q) =\n%q\nwant\n%q", tc.in, got, tc.want)
			}
		})
	}
}

func TestWebFetchHTMLTextDeeplyNested(t *testing.T) {
	// html.Parse refuses more than 512 levels; the token fallback still
	// returns the text, without the script.
	in := "<title>Deep</title>" + strings.Repeat("<div>", 2000) + "deep text<script>junk()</script>" + strings.Repeat("</div>", 2000)
	got := htmlText(in)
	if !strings.HasPrefix(got, "Deep\n\n") || !strings.Contains(got, "deep text") || strings.Contains(got, "junk") {
		t.Errorf("htmlText(deep) = %q", got)
	}
}

func TestWebFetchDecodeCharset(t *testing.T) {
	for _, tc := range []struct {
		name string
		body []byte
		ct   string
		cut  bool
		want string
	}{
		{"utf-8 declared", []byte("caf\xc3\xa9"), "text/plain; charset=utf-8", false, "café"},
		{"latin-1 declared", []byte("caf\xe9"), "text/plain; charset=ISO-8859-1", false, "café"},
		{"meta charset", []byte(`<meta charset="windows-1252"><p>caf` + "\xe9"), "text/html", false, `<meta charset="windows-1252"><p>café`},
		{"undeclared utf-8 after a long ascii start", []byte(strings.Repeat("a", 2000) + "\xc3\xa9"), "text/plain", false, strings.Repeat("a", 2000) + "é"},
		{"latin-1 undeclared, ending in a high byte", []byte("caf\xe9"), "text/plain", false, "café"},
		{"cut in the middle of a rune", []byte(strings.Repeat("a", 2000) + "é\xc3"), "", true, strings.Repeat("a", 2000) + "é\uFFFD"},
	} {
		if got := decodeCharset(tc.body, tc.ct, tc.cut); got != tc.want {
			t.Errorf("%s: decodeCharset = %q; want %q", tc.name, got, tc.want)
		}
	}
}

func TestWebFetchTruncateRunes(t *testing.T) {
	for _, tc := range []struct {
		in    string
		n     int
		want  string
		total int
	}{
		{"hello", 10, "hello", 5},
		{"hello", 5, "hello", 5},
		{"hello", 3, "hel", 5},
		{"ééééé", 2, "éé", 5},
		{"a€b", 2, "a€", 3},
	} {
		got, total := truncateRunes(tc.in, tc.n)
		if got != tc.want || total != tc.total {
			t.Errorf("truncateRunes(%q, %d) = %q, %d; want %q, %d", tc.in, tc.n, got, total, tc.want, tc.total)
		}
	}
}
