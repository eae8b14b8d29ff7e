package tools

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
	"golang.org/x/net/html/charset"

	"github.com/agentd/agentd/internal/agent"
)

// Defaults for the zero values of WebFetchConfig, and web_fetch's fixed
// limits.
const (
	DefaultWebFetchTimeout      = 30 * time.Second
	DefaultWebFetchMaxBodyBytes = 5 << 20

	maxRedirects     = 20       // redirect hops followed (Agentao's limit)
	maxFetchChars    = 10000    // characters of text returned
	maxErrorChars    = 1000     // characters of an error page returned
	maxErrorBody     = 64 << 10 // bytes of an error page read
	webFetchUA       = "Mozilla/5.0 (compatible; agentd/1.0; web_fetch; +https://github.com/agentd/agentd)"
	webFetchAccept   = "text/html,application/xhtml+xml,text/plain;q=0.9,application/json;q=0.9,*/*;q=0.5"
	redirectDrainCap = 64 << 10 // bytes of a redirect's body read before it is closed
)

// WebFetchConfig enables and tunes the web_fetch tool. The zero value is
// ready to use.
type WebFetchConfig struct {
	// AllowCIDRs are address ranges web_fetch may reach even though they
	// are not public (loopback, private, ...). It is the escape hatch of
	// Agentao's AGENTAO_WEB_FETCH_ALLOW_CIDRS (see ParseAllowCIDRs); there is
	// no per-call bypass. Local names (localhost, *.internal, ...) stay
	// refused whatever it holds.
	AllowCIDRs []netip.Prefix
	// Timeout bounds a whole fetch: DNS, every redirect hop and reading the
	// body. Zero means DefaultWebFetchTimeout (30s).
	Timeout time.Duration
	// MaxBodyBytes caps the bytes of a response body read; the rest is
	// never read. Zero means DefaultWebFetchMaxBodyBytes (5 MiB).
	MaxBodyBytes int64
	// Resolver looks up host names. Nil means net.DefaultResolver.
	Resolver Resolver
	// Permit, if set, is asked before every fetch; an error refuses the
	// call with that error and nothing is sent (agentd refuses web_fetch to
	// sessions whose sandbox profile has no network).
	Permit func() error
}

func (c WebFetchConfig) withDefaults() WebFetchConfig {
	if c.Timeout <= 0 {
		c.Timeout = DefaultWebFetchTimeout
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = DefaultWebFetchMaxBodyBytes
	}
	if c.Resolver == nil {
		c.Resolver = net.DefaultResolver
	}
	c.AllowCIDRs = append([]netip.Prefix(nil), c.AllowCIDRs...)
	return c
}

// errFetchTimeout is the cause of a fetch's context when its Timeout passes.
var errFetchTimeout = errors.New("web_fetch timeout")

// webFetcher fetches URLs for one Set.
type webFetcher struct {
	cfg       WebFetchConfig
	guard     *guard
	tlsConfig *tls.Config // nil: the system's roots; tests set their own
}

func newWebFetcher(cfg WebFetchConfig) *webFetcher {
	cfg = cfg.withDefaults()
	return &webFetcher{cfg: cfg, guard: &guard{allow: cfg.AllowCIDRs, resolver: cfg.Resolver}}
}

// webFetch returns web_fetch's implementation for the Set.
func (s *Set) webFetch(cfg WebFetchConfig) func(context.Context, agent.Call, args) (string, error) {
	f := newWebFetcher(cfg)
	return func(ctx context.Context, _ agent.Call, a args) (string, error) {
		raw, err := a.required("url")
		if err != nil {
			return "", err
		}
		extract, err := a.boolean("extract_text", true)
		if err != nil {
			return "", err
		}
		if cfg.Permit != nil {
			if err := cfg.Permit(); err != nil {
				return "", err
			}
		}
		ctx, cancel := context.WithCancelCause(ctx)
		defer cancel(nil)
		go func() {
			select {
			case <-s.done:
				cancel(ErrClosed)
			case <-ctx.Done():
			}
		}()
		return f.fetch(ctx, raw, extract)
	}
}

// parseFetchURL parses the model's URL as the permission rules do: https://
// is assumed when it has no "://".
func parseFetchURL(raw string) (*url.URL, error) {
	if !strings.Contains(raw, "://") {
		raw = "https://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("invalid URL %q: %v", raw, err)
	}
	return u, nil
}

// fetch GETs raw, following redirects, and returns the response as text.
// ctx is the turn's context; a cause of ErrClosed means the Set closed.
func (f *webFetcher) fetch(ctx context.Context, raw string, extract bool) (string, error) {
	u, err := parseFetchURL(raw)
	if err != nil {
		return "", err
	}
	fctx, cancel := context.WithTimeoutCause(ctx, f.cfg.Timeout, errFetchTimeout)
	defer cancel()
	tr := &http.Transport{
		Proxy:                  nil, // an environment proxy would bypass the address pinning
		DialContext:            f.guard.dialContext,
		TLSClientConfig:        f.tlsConfig,
		ForceAttemptHTTP2:      true,
		TLSHandshakeTimeout:    10 * time.Second,
		MaxResponseHeaderBytes: 1 << 20,
		IdleConnTimeout:        30 * time.Second,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{
		Transport:     tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}

	resp, cur, hops, err := f.follow(fctx, client, u)
	if err != nil {
		return "", f.failure(ctx, fctx, cur, hops, err)
	}
	defer resp.Body.Close()

	status := statusText(resp)
	ct := resp.Header.Get("Content-Type")
	mt := mediaType(ct)
	if mt == "application/octet-stream" {
		mt = "" // often text served without a type: sniff it
	}
	ok := resp.StatusCode >= 200 && resp.StatusCode < 300
	if ok && mt != "" && !textual(mt) {
		size := ""
		if resp.ContentLength >= 0 {
			size = fmt.Sprintf(", %d bytes", resp.ContentLength)
		}
		return "", &fetchError{msg: fmt.Sprintf("URL: %s (%s)\nrefused: the response is binary content (%s%s); "+
			"web_fetch only returns text, HTML, JSON and XML", cur, status, mt, size)}
	}
	limit := f.cfg.MaxBodyBytes
	if !ok {
		limit = min(limit, maxErrorBody)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		if fe := f.ctxFailure(ctx, fctx, cur); fe != nil {
			return "", fe
		}
		return "", fmt.Errorf("reading the response from %s failed: %v", cur, err)
	}
	cut := int64(len(body)) > limit
	if cut {
		body = body[:limit]
	}
	if mt == "" {
		mt = mediaType(http.DetectContentType(body))
	}

	var text string
	binary := !textual(mt)
	if !binary {
		text, binary = bodyText(body, ct, extract && isHTML(mt), cut)
	}
	if !ok {
		msg := fmt.Sprintf("URL: %s (%s)\nthe server answered with an error status", cur, status)
		switch text = strings.TrimSpace(text); {
		case binary:
			msg += fmt.Sprintf("; its %s body is not shown", mt)
		case text == "":
			msg += " and an empty body"
		default:
			text, _ = truncateRunes(text, maxErrorChars)
			msg += "; the body starts:\n\n" + text
		}
		return "", &fetchError{msg: msg}
	}
	if binary {
		return "", &fetchError{msg: fmt.Sprintf("URL: %s (%s)\nrefused: the response is binary content (%s, %d bytes read); "+
			"web_fetch only returns text, HTML, JSON and XML", cur, status, mt, len(body))}
	}

	var b strings.Builder
	fmt.Fprintf(&b, "URL: %s (%s)\n\n", cur, status)
	text = strings.TrimSpace(text)
	if text == "" {
		if len(body) == 0 {
			text = "(empty response body)"
		} else {
			text = "(no readable text)"
		}
	}
	shown, total := truncateRunes(text, maxFetchChars)
	b.WriteString(shown)
	if total > maxFetchChars {
		fmt.Fprintf(&b, "\n\n[truncated: showing the first %d of %d characters]", maxFetchChars, total)
	}
	if cut {
		fmt.Fprintf(&b, "\n\n[the response is larger than %s; only its first %s were read]", byteSize(limit), byteSize(limit))
	}
	return b.String(), nil
}

// follow GETs u, following at most maxRedirects redirects; every hop's URL
// is checked before it is requested and its host judged when dialled. It
// returns the final response, its URL and the number of redirects followed.
func (f *webFetcher) follow(ctx context.Context, client *http.Client, u *url.URL) (*http.Response, *url.URL, int, error) {
	for hops := 0; ; hops++ {
		if err := f.guard.checkURL(u); err != nil {
			return nil, u, hops, err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
		if err != nil {
			return nil, u, hops, &fetchError{msg: fmt.Sprintf("invalid URL %q: %v", u.String(), err)}
		}
		req.Header.Set("User-Agent", webFetchUA)
		req.Header.Set("Accept", webFetchAccept)
		resp, err := client.Do(req)
		if err != nil {
			return nil, u, hops, err
		}
		loc := resp.Header.Get("Location")
		if !isRedirect(resp.StatusCode) || loc == "" {
			return resp, u, hops, nil
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, redirectDrainCap))
		resp.Body.Close()
		next, err := u.Parse(loc)
		if err != nil {
			return nil, u, hops, &fetchError{msg: fmt.Sprintf("%s redirected to an invalid URL %q", u, loc)}
		}
		if hops+1 > maxRedirects {
			return nil, next, hops, &fetchError{msg: fmt.Sprintf(
				"too many redirects (%d): stopped before %s; at most %d are followed", hops+1, next, maxRedirects)}
		}
		u = next
	}
}

func isRedirect(code int) bool {
	switch code {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
		http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		return true
	}
	return false
}

// failure turns an error of a request of u (after hops redirects) into the
// tool's error.
func (f *webFetcher) failure(ctx, fctx context.Context, u *url.URL, hops int, err error) error {
	if fe := f.ctxFailure(ctx, fctx, u); fe != nil {
		return fe
	}
	var fe *fetchError
	if errors.As(err, &fe) {
		if hops > 0 && !strings.HasPrefix(fe.msg, "too many redirects") {
			return &fetchError{msg: fmt.Sprintf("redirected to %s: %s", u, fe.msg)}
		}
		return fe
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return fmt.Errorf("fetching %s failed: %v", u, err)
}

// ctxFailure returns the error for a fetch stopped by its contexts, or nil.
func (f *webFetcher) ctxFailure(ctx, fctx context.Context, u *url.URL) error {
	if ctx.Err() != nil {
		if errors.Is(context.Cause(ctx), ErrClosed) {
			return ErrClosed
		}
		return cancelled(ctx)
	}
	if errors.Is(context.Cause(fctx), errFetchTimeout) {
		return fmt.Errorf("timed out after %s fetching %s", seconds(f.cfg.Timeout)+"s", u)
	}
	return nil
}

func statusText(resp *http.Response) string {
	if t := http.StatusText(resp.StatusCode); t != "" {
		return fmt.Sprintf("%d %s", resp.StatusCode, t)
	}
	return strconv.Itoa(resp.StatusCode)
}

// mediaType returns the lower-case media type of a Content-Type value.
func mediaType(ct string) string {
	if ct == "" {
		return ""
	}
	if mt, _, err := mime.ParseMediaType(ct); err == nil {
		return mt
	}
	mt, _, _ := strings.Cut(ct, ";")
	return strings.ToLower(strings.TrimSpace(mt))
}

func isHTML(mt string) bool { return mt == "text/html" || mt == "application/xhtml+xml" }

// textual reports whether a media type is text web_fetch returns.
func textual(mt string) bool {
	if strings.HasPrefix(mt, "text/") || strings.HasSuffix(mt, "+json") ||
		strings.HasSuffix(mt, "+xml") || strings.HasSuffix(mt, "+yaml") {
		return true
	}
	switch mt {
	case "application/json", "application/xml", "application/javascript", "application/ecmascript",
		"application/x-javascript", "application/yaml", "application/x-yaml", "application/toml",
		"application/x-toml", "application/x-sh", "application/sql", "application/graphql",
		"application/x-ndjson", "application/jsonl", "application/csv", "application/x-www-form-urlencoded",
		"application/x-tex", "application/x-latex":
		return true
	}
	return false
}

// bodyText decodes body to UTF-8 (from its declared or sniffed charset) and,
// if html, extracts its readable text. cut says the body was cut at the byte
// cap. binary is true if the decoded text holds NUL bytes.
func bodyText(body []byte, contentType string, html, cut bool) (text string, binary bool) {
	s := decodeCharset(body, contentType, cut)
	if strings.IndexByte(s[:min(len(s), binarySniff)], 0) >= 0 {
		return "", true
	}
	if html {
		return htmlText(s), false
	}
	return strings.ReplaceAll(s, "\r\n", "\n"), false
}

// decodeCharset returns body as UTF-8. Without a BOM or a declared charset,
// a body that is valid UTF-8 (up to a rune split by the cap, if cut) is
// taken as UTF-8, whatever its first 1 KiB suggests.
func decodeCharset(body []byte, contentType string, cut bool) string {
	enc, name, certain := charset.DetermineEncoding(body, contentType)
	valid := utf8.Valid(body) || cut && utf8.Valid(trimPartialRune(body))
	if name == "utf-8" || (!certain && valid) {
		return strings.ToValidUTF8(string(body), "\uFFFD")
	}
	out, err := enc.NewDecoder().Bytes(body)
	if err != nil {
		return strings.ToValidUTF8(string(body), "\uFFFD")
	}
	return strings.ToValidUTF8(string(out), "\uFFFD")
}

// trimPartialRune drops an incomplete UTF-8 sequence at the end of b (a body
// cut at the byte cap).
func trimPartialRune(b []byte) []byte {
	for i := len(b) - 1; i >= 0 && i >= len(b)-utf8.UTFMax; i-- {
		if utf8.RuneStart(b[i]) {
			if !utf8.FullRune(b[i:]) {
				return b[:i]
			}
			break
		}
	}
	return b
}

// truncateRunes returns s cut to at most n characters, and s's length in
// characters.
func truncateRunes(s string, n int) (string, int) {
	total := utf8.RuneCountInString(s)
	if total <= n {
		return s, total
	}
	i := 0
	for k := 0; k < n; k++ {
		_, size := utf8.DecodeRuneInString(s[i:])
		i += size
	}
	return s[:i], total
}

func byteSize(n int64) string {
	if n >= 1<<20 && n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	if n >= 1<<10 && n%(1<<10) == 0 {
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// htmlText returns the readable text of an HTML document: its title first,
// then the text of the body with scripts, styles, hidden and other
// non-content elements dropped, links' text kept, white space collapsed and
// block elements on lines of their own.
func htmlText(src string) string {
	doc, err := html.Parse(strings.NewReader(src))
	if err != nil {
		// Parse refuses documents nested deeper than 512 elements.
		return htmlTokensText(src)
	}
	var w textWriter
	if t := findTitle(doc); t != "" {
		w.text(t)
		w.brk(2)
	}
	pre := 0
	enter := func(n *html.Node) bool {
		switch n.Type {
		case html.TextNode:
			if pre > 0 {
				w.verbatim(n.Data)
			} else {
				w.text(n.Data)
			}
			return false
		case html.ElementNode:
		default:
			return false
		}
		if skipElement(n) {
			return false
		}
		w.brk(blockBreak(n.DataAtom))
		switch n.DataAtom {
		case atom.Br:
			w.brk(1)
			return false
		case atom.Hr:
			w.brk(2)
			return false
		case atom.Pre:
			pre++
		case atom.Li:
			w.bullet()
		case atom.Td, atom.Th:
			if prevElementSibling(n) != nil {
				w.cell()
			}
		}
		return true
	}
	leave := func(n *html.Node) {
		if n.Type != html.ElementNode || skipElement(n) {
			return
		}
		if n.DataAtom == atom.Pre {
			pre--
		}
		w.brk(blockBreak(n.DataAtom))
	}
	// Iterative walk: no recursion however deep the document.
	for n := doc.FirstChild; n != nil; {
		if enter(n) && n.FirstChild != nil {
			n = n.FirstChild
			continue
		}
		leave(n)
		for n != nil && n.NextSibling == nil {
			n = n.Parent
			if n == doc {
				n = nil
				break
			}
			leave(n)
		}
		if n != nil {
			n = n.NextSibling
		}
	}
	return w.String()
}

// findTitle returns the collapsed text of the document's first HTML title.
func findTitle(doc *html.Node) string {
	stack := []*html.Node{doc}
	for len(stack) > 0 {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if n.Type == html.ElementNode && n.DataAtom == atom.Title && n.Namespace == "" {
			var w textWriter
			for c := n.FirstChild; c != nil; c = c.NextSibling {
				if c.Type == html.TextNode {
					w.text(c.Data)
				}
			}
			return w.String()
		}
		for c := n.LastChild; c != nil; c = c.PrevSibling {
			stack = append(stack, c)
		}
	}
	return ""
}

// skipElement reports whether an element's content is not readable text.
func skipElement(n *html.Node) bool {
	if n.Namespace == "svg" {
		return true
	}
	switch n.DataAtom {
	case atom.Head, atom.Title, atom.Script, atom.Style, atom.Noscript, atom.Template, atom.Iframe,
		atom.Object, atom.Embed, atom.Canvas, atom.Select, atom.Datalist, atom.Svg, atom.Img, atom.Input:
		return true
	}
	for _, a := range n.Attr {
		switch a.Key {
		case "hidden":
			return true
		case "aria-hidden":
			if strings.EqualFold(a.Val, "true") {
				return true
			}
		case "style":
			if strings.Contains(strings.ToLower(strings.ReplaceAll(a.Val, " ", "")), "display:none") {
				return true
			}
		}
	}
	return false
}

func prevElementSibling(n *html.Node) *html.Node {
	for p := n.PrevSibling; p != nil; p = p.PrevSibling {
		if p.Type == html.ElementNode {
			return p
		}
	}
	return nil
}

// blockBreak is the number of line breaks around an element: 2 for
// paragraph-like blocks, 1 for other blocks, 0 for inline elements.
func blockBreak(a atom.Atom) int {
	switch a {
	case atom.P, atom.H1, atom.H2, atom.H3, atom.H4, atom.H5, atom.H6, atom.Pre, atom.Blockquote,
		atom.Table, atom.Figure:
		return 2
	case atom.Address, atom.Article, atom.Aside, atom.Body, atom.Caption, atom.Center, atom.Dd,
		atom.Details, atom.Dialog, atom.Div, atom.Dl, atom.Dt, atom.Fieldset, atom.Figcaption,
		atom.Footer, atom.Form, atom.Header, atom.Hgroup, atom.Legend, atom.Li, atom.Main, atom.Menu,
		atom.Nav, atom.Ol, atom.Option, atom.Section, atom.Summary, atom.Tr, atom.Ul:
		return 1
	}
	return 0
}

// htmlTokensText is htmlText for documents html.Parse refuses: a flat pass
// over the tokens that drops the content of raw-text elements (script,
// style, ...) and breaks lines at block elements.
func htmlTokensText(src string) string {
	z := html.NewTokenizer(strings.NewReader(src))
	var w, title textWriter
	var raw atom.Atom // raw-text element whose content comes next
	for {
		switch z.Next() {
		case html.ErrorToken:
			if t := title.String(); t != "" {
				return t + "\n\n" + w.String()
			}
			return w.String()
		case html.TextToken:
			switch raw {
			case 0, atom.Textarea:
				w.text(string(z.Text()))
			case atom.Title:
				if title.b.Len() == 0 {
					title.text(string(z.Text()))
				}
			}
			raw = 0
		case html.StartTagToken, html.SelfClosingTagToken, html.EndTagToken:
			name, _ := z.TagName()
			a := atom.Lookup(name)
			raw = 0
			switch a {
			case atom.Script, atom.Style, atom.Noscript, atom.Title, atom.Textarea, atom.Iframe,
				atom.Noembed, atom.Noframes, atom.Xmp, atom.Template:
				raw = a
			case atom.Br:
				w.brk(1)
			}
			w.brk(blockBreak(a))
		}
	}
}

// textWriter builds readable text: runs of white space become one space,
// lines have no leading or trailing spaces, and breaks never pile up beyond
// one blank line.
type textWriter struct {
	b     strings.Builder
	space bool // white space seen since the last character written
	nl    int  // line breaks at the end of b
	begun bool
}

func (w *textWriter) text(s string) {
	for _, r := range s {
		if unicode.IsSpace(r) {
			w.space = true
			continue
		}
		w.char(r)
	}
}

func (w *textWriter) char(r rune) {
	if w.space && w.nl == 0 && w.begun {
		w.b.WriteByte(' ')
	}
	w.space = false
	w.b.WriteRune(r)
	w.nl = 0
	w.begun = true
}

// verbatim writes preformatted text, keeping its spaces and line breaks.
func (w *textWriter) verbatim(s string) {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	for _, r := range s {
		switch {
		case r == '\n':
			if w.begun {
				w.b.WriteByte('\n')
				w.nl++
			}
			w.space = false
		case unicode.IsSpace(r):
			if w.begun {
				w.b.WriteRune(r)
			}
		default:
			w.space = false
			w.b.WriteRune(r)
			w.nl = 0
			w.begun = true
		}
	}
}

// brk ends the current line with up to n line breaks in all.
func (w *textWriter) brk(n int) {
	if n == 0 || !w.begun {
		return
	}
	w.space = false
	for w.nl < n {
		w.b.WriteByte('\n')
		w.nl++
	}
}

func (w *textWriter) bullet() {
	w.char('-')
	w.space = true
}

func (w *textWriter) cell() {
	if w.nl == 0 && w.begun {
		w.space = true
		w.char('|')
		w.space = true
	}
}

func (w *textWriter) String() string {
	return strings.TrimSpace(w.b.String())
}
