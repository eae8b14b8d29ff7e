package tools

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/net/idna"
)

// SSRF guard of web_fetch (reference §1.3, Agentao's security/url_policy.py).
//
// Every URL the tool requests, the first and each redirect hop, goes through
// checkURL (scheme, credentials, port, host syntax, local names, IP literals
// in any form). The host is then resolved once, inside the HTTP transport's
// dialer: every address must be globally routable (or inside
// WebFetchConfig.AllowCIDRs), and the connection is made to one of exactly
// those addresses, so no second lookup can swap in another one. The dialer's
// Control hook checks the socket address once more just before connect.

const lookupTimeout = 5 * time.Second

// Resolver looks up the addresses of a host name. *net.Resolver satisfies it.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// fetchError is a web_fetch failure whose message is meant for the model as
// is. It travels through net/http's error wrapping from the dialer.
type fetchError struct{ msg string }

func (e *fetchError) Error() string { return e.msg }

func refusef(format string, a ...any) error {
	return &fetchError{msg: "refused: " + fmt.Sprintf(format, a...)}
}

// ParseAllowCIDRs parses the value of an allow-list setting such as
// Agentao's AGENTAO_WEB_FETCH_ALLOW_CIDRS: CIDR prefixes or single addresses
// separated by commas and/or white space. An empty string gives nil.
func ParseAllowCIDRs(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.FieldsFunc(s, func(r rune) bool {
		return r == ',' || r == ' ' || r == '\t' || r == '\n' || r == '\r'
	}) {
		if strings.Contains(f, "/") {
			p, err := netip.ParsePrefix(f)
			if err != nil {
				return nil, fmt.Errorf("allowed CIDR %q: %v", f, err)
			}
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil {
			return nil, fmt.Errorf("allowed address %q: %v", f, err)
		}
		if a.Zone() != "" {
			return nil, fmt.Errorf("allowed address %q: zones are not allowed", f)
		}
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// guard decides which hosts and addresses web_fetch may reach.
type guard struct {
	allow    []netip.Prefix
	resolver Resolver
}

// checkURL refuses a URL web_fetch must not request, without any network
// access: a scheme other than http or https, credentials, a bad port, a
// local name or a non-public IP literal (in any of the forms a C resolver
// accepts). Names are judged the way the HTTP transport will send them to
// DNS (IDNA-mapped), so "ｌｏｃａｌｈｏｓｔ" is localhost.
func (g *guard) checkURL(u *url.URL) error {
	switch strings.ToLower(u.Scheme) {
	case "http", "https":
	case "":
		return &fetchError{msg: fmt.Sprintf("invalid URL %q: it must start with http:// or https://", u.String())}
	default:
		return refusef("only http and https URLs can be fetched, not %s:", u.Scheme)
	}
	if u.User != nil {
		return refusef("URLs with credentials (user:password@) are not allowed")
	}
	if u.Opaque != "" {
		return &fetchError{msg: fmt.Sprintf("invalid URL %q", u.String())}
	}
	host := u.Hostname()
	if host == "" {
		return &fetchError{msg: fmt.Sprintf("invalid URL %q: no host", u.String())}
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.ParseUint(p, 10, 16); err != nil || n == 0 {
			return &fetchError{msg: fmt.Sprintf("invalid URL %q: bad port %q", u.String(), p)}
		}
	}
	_, err := g.literal(host)
	return err
}

// literal applies every check on host that needs no DNS. It returns the
// address if host is an IP address (which is then judged), or an invalid
// Addr for a name that may be resolved.
func (g *guard) literal(host string) (netip.Addr, error) {
	if a, err := netip.ParseAddr(host); err == nil {
		if a.Zone() != "" {
			return netip.Addr{}, refusef("%s is a scoped (zoned) address", host)
		}
		if why := g.refuse(a); why != "" {
			return netip.Addr{}, refusef("%s is not a public address (%s)", host, why)
		}
		return a, nil
	}
	name := host
	if !isASCII(name) {
		n, err := idna.Lookup.ToASCII(name)
		if err != nil {
			return netip.Addr{}, &fetchError{msg: fmt.Sprintf("invalid host name %q: %v", host, err)}
		}
		name = n
		// IDNA maps e.g. fullwidth digits and dots to ASCII ones.
		if a, err := netip.ParseAddr(name); err == nil {
			if why := g.refuse(a); why != "" {
				return netip.Addr{}, refusef("%s (%s) is not a public address (%s)", host, a, why)
			}
			return netip.Addr{}, refusef("%s is an IP address written in unusual characters; write it as %s", host, a)
		}
	}
	name = strings.TrimRight(strings.ToLower(name), ".")
	if name == "" {
		return netip.Addr{}, &fetchError{msg: fmt.Sprintf("invalid host name %q", host)}
	}
	if numericHost(name) {
		a, ok := inetAton(name)
		if !ok {
			return netip.Addr{}, refusef("%s is not a valid host name or IPv4 address", host)
		}
		if a.String() == name {
			// Canonical apart from a trailing dot.
			if why := g.refuse(a); why != "" {
				return netip.Addr{}, refusef("%s is not a public address (%s)", host, why)
			}
			return a, nil
		}
		if why := g.refuse(a); why != "" {
			return netip.Addr{}, refusef("%s means %s, which is not a public address (%s)", host, a, why)
		}
		return netip.Addr{}, refusef("%s is an IPv4 address in a non-standard form; write it as %s", host, a)
	}
	if localName(name) {
		return netip.Addr{}, refusef("%s is a local name", host)
	}
	return netip.Addr{}, nil
}

// resolve returns the addresses web_fetch may connect to for host, as the
// HTTP transport gives it to the dialer: an IP literal, or a name looked up
// once (with a 5 s timeout). It fails if any address is not public.
func (g *guard) resolve(ctx context.Context, host string) ([]netip.Addr, error) {
	if a, err := g.literal(host); err != nil {
		return nil, err
	} else if a.IsValid() {
		return []netip.Addr{a}, nil
	}
	lctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	defer cancel()
	addrs, err := g.resolver.LookupNetIP(lctx, "ip", strings.ToLower(host))
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &fetchError{msg: fmt.Sprintf("could not resolve %s: %v", host, err)}
	}
	if len(addrs) == 0 {
		return nil, &fetchError{msg: fmt.Sprintf("could not resolve %s: no addresses", host)}
	}
	for _, a := range addrs {
		if why := g.refuse(a); why != "" {
			return nil, refusef("%s resolves to %s, which is not a public address (%s)", host, a.WithZone(""), why)
		}
	}
	return addrs, nil
}

// dialContext is the HTTP transport's dialer: it resolves and judges the
// host once and connects only to the addresses it judged.
func (g *guard) dialContext(ctx context.Context, network, hostport string) (net.Conn, error) {
	host, portStr, err := net.SplitHostPort(hostport)
	if err != nil {
		return nil, &fetchError{msg: fmt.Sprintf("invalid address %q: %v", hostport, err)}
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil || port == 0 {
		return nil, &fetchError{msg: fmt.Sprintf("invalid port %q", portStr)}
	}
	addrs, err := g.resolve(ctx, host)
	if err != nil {
		return nil, err
	}
	d := net.Dialer{Timeout: 10 * time.Second, Control: g.control}
	var errs []error
	for _, a := range addrs {
		ap := netip.AddrPortFrom(a.Unmap().WithZone(""), uint16(port))
		c, err := d.DialContext(ctx, network, ap.String())
		if err == nil {
			return c, nil
		}
		if ctx.Err() != nil {
			return nil, err
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}

// control runs just before connect(2): a last check that the socket address
// is one the guard allows.
func (g *guard) control(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return refusef("cannot check the address %q", address)
	}
	if why := g.refuse(ap.Addr()); why != "" {
		return refusef("%s is not a public address (%s)", ap.Addr(), why)
	}
	return nil
}

// refuse returns why a is not a globally routable address web_fetch may
// reach, or "" if it may. Addresses inside the allowed prefixes pass.
// IPv4-mapped, 6to4 and NAT64 addresses are judged by the IPv4 address they
// embed.
func (g *guard) refuse(a netip.Addr) string {
	a = a.WithZone("")
	if !a.IsValid() {
		return "invalid"
	}
	for _, p := range g.allow {
		if p.Contains(a) || p.Contains(a.Unmap()) {
			return ""
		}
	}
	if a.Is4In6() {
		return g.refuse(a.Unmap())
	}
	if a.Is4() {
		for _, r := range v4Blocked {
			if r.p.Contains(a) {
				return r.why
			}
		}
		return ""
	}
	b := a.As16()
	switch {
	case nat64.Contains(a):
		return g.refuse(netip.AddrFrom4([4]byte(b[12:16])))
	case sixToFour.Contains(a):
		return g.refuse(netip.AddrFrom4([4]byte(b[2:6])))
	}
	for _, r := range v6Blocked {
		if r.p.Contains(a) {
			return r.why
		}
	}
	if !globalUnicast6.Contains(a) {
		return "reserved"
	}
	return ""
}

type blockedRange struct {
	p   netip.Prefix
	why string
}

// Non-global IPv4 ranges (IANA special-purpose registry), most specific first.
var v4Blocked = []blockedRange{
	{netip.MustParsePrefix("0.0.0.0/8"), "\"this network\""},
	{netip.MustParsePrefix("10.0.0.0/8"), "private network"},
	{netip.MustParsePrefix("100.64.0.0/10"), "shared address space (CGNAT)"},
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback"},
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local, including cloud metadata"},
	{netip.MustParsePrefix("172.16.0.0/12"), "private network"},
	{netip.MustParsePrefix("192.0.0.0/24"), "IETF protocol assignments"},
	{netip.MustParsePrefix("192.0.2.0/24"), "documentation"},
	{netip.MustParsePrefix("192.88.99.0/24"), "6to4 relay anycast"},
	{netip.MustParsePrefix("192.168.0.0/16"), "private network"},
	{netip.MustParsePrefix("198.18.0.0/15"), "benchmarking"},
	{netip.MustParsePrefix("198.51.100.0/24"), "documentation"},
	{netip.MustParsePrefix("203.0.113.0/24"), "documentation"},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast"},
	{netip.MustParsePrefix("255.255.255.255/32"), "broadcast"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved"},
}

var (
	nat64          = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour      = netip.MustParsePrefix("2002::/16")
	globalUnicast6 = netip.MustParsePrefix("2000::/3")
)

// Non-global IPv6 ranges. Anything outside 2000::/3 is refused as well.
var v6Blocked = []blockedRange{
	{netip.MustParsePrefix("::/128"), "unspecified"},
	{netip.MustParsePrefix("::1/128"), "loopback"},
	{netip.MustParsePrefix("::/96"), "IPv4-compatible (deprecated)"},
	{netip.MustParsePrefix("64:ff9b:1::/48"), "local-use NAT64"},
	{netip.MustParsePrefix("100::/64"), "discard-only"},
	{netip.MustParsePrefix("2001::/32"), "Teredo"},
	{netip.MustParsePrefix("2001:2::/48"), "benchmarking"},
	{netip.MustParsePrefix("2001:10::/28"), "ORCHID"},
	{netip.MustParsePrefix("2001:20::/28"), "ORCHIDv2"},
	{netip.MustParsePrefix("2001:db8::/32"), "documentation"},
	{netip.MustParsePrefix("3fff::/20"), "documentation"},
	{netip.MustParsePrefix("fc00::/7"), "private network (unique local)"},
	{netip.MustParsePrefix("fe80::/10"), "link-local"},
	{netip.MustParsePrefix("fec0::/10"), "site-local (deprecated)"},
	{netip.MustParsePrefix("ff00::/8"), "multicast"},
}

// localName reports whether name (lower case, no trailing dot) names this
// machine or a private network.
func localName(name string) bool {
	switch name {
	case "localhost", "localhost.localdomain", "metadata.google.internal":
		return true
	}
	for _, suf := range []string{".localhost", ".local", ".localdomain", ".internal", ".cluster.local"} {
		if strings.HasSuffix(name, suf) {
			return true
		}
	}
	return false
}

// numericHost reports whether every dot-separated label of name is a number
// as inet_aton reads them: decimal, octal (leading 0) or hex (0x). Such a
// name is an IPv4 address to a C resolver, never a DNS name.
func numericHost(name string) bool {
	for _, l := range strings.Split(name, ".") {
		if l == "" {
			return false
		}
		if len(l) >= 2 && l[0] == '0' && (l[1] == 'x' || l[1] == 'X') {
			l = l[2:]
			for i := 0; i < len(l); i++ {
				if !isHex(l[i]) {
					return false
				}
			}
			continue
		}
		for i := 0; i < len(l); i++ {
			if l[i] < '0' || l[i] > '9' {
				return false
			}
		}
	}
	return true
}

// inetAton parses s as glibc's inet_aton does: one to four parts, each
// decimal, octal (leading 0) or hex (0x); the last part fills the remaining
// bytes ("127.1" is 127.0.0.1, "2130706433" is 127.0.0.1).
func inetAton(s string) (netip.Addr, bool) {
	parts := strings.Split(s, ".")
	if len(parts) > 4 {
		return netip.Addr{}, false
	}
	vals := make([]uint64, len(parts))
	for i, p := range parts {
		base := 10
		switch {
		case len(p) >= 2 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X'):
			base, p = 16, p[2:]
			if p == "" {
				return netip.Addr{}, false
			}
		case len(p) > 1 && p[0] == '0':
			base, p = 8, p[1:]
		}
		v, err := strconv.ParseUint(p, base, 32)
		if err != nil {
			return netip.Addr{}, false
		}
		vals[i] = v
	}
	last := len(vals) - 1
	var ip uint64
	for i, v := range vals[:last] {
		if v > 0xff {
			return netip.Addr{}, false
		}
		ip |= v << (24 - 8*i)
	}
	if vals[last] > 0xffffffff>>(8*last) {
		return netip.Addr{}, false
	}
	ip |= vals[last]
	return netip.AddrFrom4([4]byte{byte(ip >> 24), byte(ip >> 16), byte(ip >> 8), byte(ip)}), true
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
