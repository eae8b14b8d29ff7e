package fleet

import (
	"net/url"
	"testing"

	"github.com/agentd/agentd/internal/session"
)

// FuzzPeers: AGENTD_PEERS never panics the parser, and what it accepts is
// a membership agentd can use: valid member names, each an http URL with a
// host and a port and nothing else, this replica among them.
func FuzzPeers(f *testing.F) {
	for _, s := range []string{"a=http://127.0.0.1:8080,b=http://10.0.0.2:8080", "dns+http://agentd-headless:8080",
		"a=http://h:1,a=http://h:2", "a=http://user@h:1/p?q", "dns+http://:8080", "a=https://h:1", ""} {
		f.Add(s, "a")
	}
	f.Fuzz(func(t *testing.T, spec, self string) {
		p, err := parsePeers(spec, self)
		if err != nil {
			return
		}
		if p.dns() {
			if p.dnsHost == "" || p.dnsPort == "" {
				t.Fatalf("accepted %q without a host and a port", spec)
			}
			return
		}
		if _, ok := p.static[self]; !ok {
			t.Fatalf("accepted %q, which does not name this replica %q", spec, self)
		}
		for name, base := range p.static {
			if session.ValidNode(name) != nil {
				t.Fatalf("accepted member name %q", name)
			}
			u, err := url.Parse(base)
			if err != nil || u.Scheme != "http" || u.Hostname() == "" || u.Port() == "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
				t.Fatalf("accepted member URL %q of %q", base, spec)
			}
		}
	})
}
