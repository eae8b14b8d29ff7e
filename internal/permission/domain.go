package permission

import (
	"net/netip"
	"net/url"
	"strconv"
	"strings"
)

type hostKind uint8

const (
	hostExact      hostKind = iota // "r.jina.ai": that host only
	hostSuffix                     // ".github.com": github.com and its subdomains
	hostIPv4Prefix                 // "10.": IPv4 literals starting with 10.
)

type hostPattern struct {
	s    string // lower case; for hostSuffix with its leading dot
	kind hostKind
}

type domainMatcher struct {
	urlArg       string
	allow, block []hostPattern
}

func compileDomain(d Domain, index int) (*domainMatcher, []error) {
	m := &domainMatcher{urlArg: d.URLArg}
	if m.urlArg == "" {
		m.urlArg = "url"
	}
	var errs []error
	if len(d.Allowlist) == 0 && len(d.Blocklist) == 0 {
		errs = append(errs, fieldError(index, "domain", "needs a non-empty allowlist or blocklist"))
	}
	for _, l := range []struct {
		name  string
		hosts []string
		into  *[]hostPattern
	}{{"allowlist", d.Allowlist, &m.allow}, {"blocklist", d.Blocklist, &m.block}} {
		for i, h := range l.hosts {
			p, err := parseHostPattern(h)
			if err != "" {
				errs = append(errs, fieldError(index, "domain."+l.name+"["+strconv.Itoa(i)+"]", "%q: %s", h, err))
				continue
			}
			*l.into = append(*l.into, p)
		}
	}
	return m, errs
}

// parseHostPattern validates a host list entry; it returns why it is
// invalid, or "".
func parseHostPattern(h string) (hostPattern, string) {
	h = strings.ToLower(h)
	switch {
	case h == "" || h == ".":
		return hostPattern{}, "empty host"
	case strings.Contains(h, "://") || strings.ContainsAny(h, "/?#@"):
		return hostPattern{}, "want a host name, not a URL"
	case strings.ContainsAny(h, "*"):
		return hostPattern{}, `wildcards are not supported; a leading dot (".example.com") matches a domain and its subdomains`
	case strings.ContainsAny(h, " \t\r\n"):
		return hostPattern{}, "host contains white space"
	case strings.Contains(h, ":") && !isIP(strings.Trim(h, "[]")):
		return hostPattern{}, "want a host name without a port"
	case isIPv4Prefix(h):
		return hostPattern{s: h, kind: hostIPv4Prefix}, ""
	case h[0] == '.':
		return hostPattern{s: strings.TrimSuffix(h, "."), kind: hostSuffix}, ""
	}
	return hostPattern{s: strings.TrimSuffix(strings.Trim(h, "[]"), "."), kind: hostExact}, ""
}

// isIPv4Prefix reports whether h is like "10." or "192.168.": digits and
// dots, ending with a dot.
func isIPv4Prefix(h string) bool {
	if len(h) < 2 || h[len(h)-1] != '.' || h[0] == '.' {
		return false
	}
	for i := 0; i < len(h); i++ {
		if c := h[i]; c != '.' && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

func isIP(s string) bool {
	_, err := netip.ParseAddr(s)
	return err == nil
}

func isIPv4(s string) bool {
	a, err := netip.ParseAddr(s)
	return err == nil && a.Is4()
}

func (m *domainMatcher) matches(rawURL string) bool {
	host, ok := urlHost(rawURL)
	if !ok {
		return false // an unparseable URL never matches a domain rule
	}
	return hostIn(host, m.allow) || hostIn(host, m.block)
}

func hostIn(host string, list []hostPattern) bool {
	for _, p := range list {
		switch p.kind {
		case hostExact:
			if host == p.s {
				return true
			}
		case hostSuffix:
			if host == p.s[1:] || strings.HasSuffix(host, p.s) {
				return true
			}
		case hostIPv4Prefix:
			if strings.HasPrefix(host, p.s) && isIPv4(host) {
				return true
			}
		}
	}
	return false
}

// urlHost extracts the lower-case host of a URL, as Agentao does: https://
// is assumed when the URL has no "://", the port and user information are
// dropped, and so are IPv6 brackets and a trailing dot.
func urlHost(raw string) (string, bool) {
	if raw == "" {
		return "", false
	}
	if !strings.Contains(raw, "://") {
		raw = "https://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", false
	}
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	return host, host != ""
}
