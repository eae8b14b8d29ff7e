package fleet

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"

	"github.com/agentd/agentd/internal/session"
)

// peers is AGENTD_PEERS parsed: a static list of members, or a headless
// Service whose addresses are asked who they are.
type peers struct {
	static map[string]string // name → base URL "http://host:port"
	// dnsHost and dnsPort are the Service of dns+http://host:port; a
	// member's URL is then http://<name>.<host>:<port>.
	dnsHost, dnsPort string
}

func (p peers) dns() bool { return p.dnsHost != "" }

// memberURL is the URL of member name in DNS mode.
func (p peers) memberURL(name string) string {
	return "http://" + net.JoinHostPort(name+"."+p.dnsHost, p.dnsPort)
}

// parsePeers reads "name=http://host:port,..." (which must name self) or
// "dns+http://host:port".
func parsePeers(spec, self string) (peers, error) {
	spec = strings.TrimSpace(spec)
	if rest, ok := strings.CutPrefix(spec, "dns+"); ok {
		u, err := url.Parse(rest)
		if err != nil || u.Scheme != "http" || u.Hostname() == "" || u.Port() == "" || (u.Path != "" && u.Path != "/") || u.User != nil || u.RawQuery != "" {
			return peers{}, fmt.Errorf("want dns+http://<headless service host>:<port>, got %q", spec)
		}
		return peers{dnsHost: u.Hostname(), dnsPort: u.Port()}, nil
	}
	p := peers{static: map[string]string{}}
	urls := map[string]string{}
	for _, item := range strings.Split(spec, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, raw, ok := strings.Cut(item, "=")
		if !ok {
			return peers{}, fmt.Errorf("want name=http://host:port, got %q", item)
		}
		name = strings.TrimSpace(name)
		if err := validNode(name); err != nil {
			return peers{}, err
		}
		base, err := memberBase(strings.TrimSpace(raw))
		if err != nil {
			return peers{}, fmt.Errorf("member %s: %w", name, err)
		}
		if _, dup := p.static[name]; dup {
			return peers{}, fmt.Errorf("member %s is listed twice", name)
		}
		if other, dup := urls[base]; dup {
			return peers{}, fmt.Errorf("members %s and %s have the same URL %s", other, name, base)
		}
		p.static[name], urls[base] = base, name
	}
	if len(p.static) == 0 {
		return peers{}, errors.New("no members: want name=http://host:port,... or dns+http://host:port")
	}
	if _, ok := p.static[self]; !ok {
		names := make([]string, 0, len(p.static))
		for n := range p.static {
			names = append(names, n)
		}
		slices.Sort(names)
		return peers{}, fmt.Errorf("this node %q is not in the list (%s): every member's list names every member, itself included", self, strings.Join(names, ", "))
	}
	return p, nil
}

// memberBase checks a member URL and returns it as "http://host:port".
func memberBase(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "http" || u.Hostname() == "" || u.User != nil || u.RawQuery != "" || (u.Path != "" && u.Path != "/") {
		return "", fmt.Errorf("want http://host:port, got %q", raw)
	}
	if u.Port() == "" {
		return "", fmt.Errorf("want http://host:port with the port, got %q", raw)
	}
	return "http://" + u.Host, nil
}

// hostPort is the "host:port" of a base URL: the member's Raft address.
func hostPort(base string) string { return strings.TrimPrefix(base, "http://") }

func validNode(name string) error { return session.ValidNode(name) }
