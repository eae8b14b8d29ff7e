package httpapi

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/agentd/agentd/internal/session"
)

// Fleet is the replica's view of the fleet, for forwarding session requests.
type Fleet interface {
	Self() string                                    // this replica's name
	Owner(id session.ID) (node, url string, ok bool) // who serves id now (a handoff's directory first, else id.Node()); ok=false: no such member
	Peers() map[string]string                        // every other member: name -> base URL "http://host:port"
}

// Headers of a fleet.
const (
	// OwnerHeader names the replica that owns the session, on every
	// response about one (local or forwarded) when the server is in a fleet.
	OwnerHeader = "X-Agentd-Owner"
	// ForwardedByHeader is set on a request one replica forwards to
	// another, with the forwarder's name. A replica never forwards a
	// request that carries it: a session it does not own answers 503
	// owner_unavailable, and a listing holds its own sessions only. A
	// client that sends it only turns forwarding off for its own request.
	ForwardedByHeader = "X-Agentd-Forwarded-By"
)

const (
	// retryAfterFleet is the Retry-After of owner_unavailable and
	// no_quorum: long enough for a restarted pod or an election.
	retryAfterFleet = "5"
	// forwardDialTimeout bounds a connection to an owner: a member that
	// does not accept one in this time is unavailable.
	forwardDialTimeout = 2 * time.Second
	// forwardTimeout bounds a forwarded request that is not a turn (read,
	// delete, cancel, model, clear, approval); those answer at once. A
	// turn has no bound here: the owner's turn timeout bounds it, and a
	// client that goes away ends it.
	forwardTimeout = 30 * time.Second
	// peerListTimeout bounds each peer's part of GET /v1/sessions; a peer
	// that has not answered by then is named in "unavailable".
	peerListTimeout = 3 * time.Second
	// maxPeerListBytes bounds a peer's listing (1000 summaries are ~1 MiB).
	maxPeerListBytes = 32 << 20
)

// forwarder sends session requests to their owner. Forwarding is
// httputil.ReverseProxy: it streams both ways (SSE flushed per event), drops
// hop-by-hop headers, and cancels the upstream request when the client's
// ends.
type forwarder struct {
	fleet     Fleet
	transport *http.Transport
	proxy     *httputil.ReverseProxy
	// life ends when the server shuts down, and with it every forwarded
	// request still running (like the local turns pool.Shutdown cancels).
	life context.Context
	end  context.CancelFunc
}

func (s *Server) newForwarder(f Fleet) *forwarder {
	fw := &forwarder{fleet: f, transport: newForwardTransport()}
	fw.life, fw.end = context.WithCancel(context.Background())
	fw.proxy = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			t := pr.In.Context().Value(targetKey).(*target)
			pr.SetURL(t.url) // the member's URL, from the membership only: never from the id or the request
			pr.SetXForwarded()
			pr.Out.Header.Set(ForwardedByHeader, f.Self())
			// No session route upgrades its connection: none is forwarded.
			pr.Out.Header.Del("Upgrade")
			pr.Out.Header.Del("Connection")
		},
		Transport:     fw.transport,
		FlushInterval: -1, // flush every write: SSE events go out as they come
		ModifyResponse: func(resp *http.Response) error {
			// Set by the forwarding replica already (toOwner); ReverseProxy
			// adds the owner's headers to it.
			resp.Header.Del(OwnerHeader)
			return nil
		},
		ErrorHandler: s.forwardFailed,
		ErrorLog:     zap.NewStdLog(s.log.Named("forward").WithOptions(zap.IncreaseLevel(zapcore.WarnLevel))),
	}
	return fw
}

// newForwardTransport is the transport to owners: its own connection pool,
// never a proxy from the environment (members are reached directly), a
// short dial timeout (an owner that is down is unavailable at once), and
// no response header timeout (a JSON turn answers when it ends).
func newForwardTransport() *http.Transport {
	return &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: forwardDialTimeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout: 5 * time.Second,
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     90 * time.Second,
		// What the owner sends goes through as it is, streams included.
		DisableCompression: true,
	}
}

// close ends the forwarded requests still running and the idle connections.
func (fw *forwarder) close() {
	fw.end()
	fw.transport.CloseIdleConnections()
}

type targetCtxKey struct{}

var targetKey targetCtxKey

// target is where one request is forwarded, in its context for Rewrite and
// ErrorHandler.
type target struct {
	node   string
	url    *url.URL
	client context.Context // the inbound request's: done when the client went away
}

// ownerError is a session whose owner cannot serve it through this replica.
type ownerError struct {
	node  string
	again bool  // the request was forwarded to this replica already
	cause error // for the log, never for the client
}

func (e *ownerError) Error() string {
	if e.again {
		return "session owned by node " + e.node + " reached this replica in a forwarded request"
	}
	return "owner " + e.node + " unreachable: " + e.cause.Error()
}

func (e *ownerError) Unwrap() error { return e.cause }

// message is what the client is told: the node, not its address.
func (e *ownerError) message() string {
	if e.again {
		return "the session is owned by node " + strconv.Quote(e.node) + ", and this request reached another replica after it was forwarded once (" + ForwardedByHeader + "), which is never forwarded again; retry in a few seconds, without that header"
	}
	return "the session is owned by node " + strconv.Quote(e.node) + ", which does not answer; retry in a few seconds"
}

// toOwner forwards a request about a session owned by another member of the
// fleet to that member, after this replica authenticated the caller; the
// owner authenticates again and applies its tenant rules, so forwarding
// adds nothing to what the caller may do. turn says the route runs a turn,
// which has no time bound here. Without a fleet it is next itself.
func (s *Server) toOwner(turn bool) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		fw := s.fwd
		if fw == nil {
			return next
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			id := sessionID(r)
			self := fw.fleet.Self()
			if !id.Valid() {
				next.ServeHTTP(w, r) // never looked up: 404 like today
				return
			}
			node, base, ok := fw.fleet.Owner(id)
			ok = ok && node != ""
			switch {
			case !ok && id.Node() != "":
				// Not a member: no such session. Nothing is dialled.
				s.writeError(w, r, session.ErrNotFound)
				return
			case !ok || node == self:
				// An id without a node that no directory knows is from
				// before the fleet: served where it was made, so here.
				w.Header().Set(OwnerHeader, self)
				next.ServeHTTP(w, r)
				return
			}
			w.Header().Set(OwnerHeader, node)
			if r.Header.Get(ForwardedByHeader) != "" {
				s.writeError(w, r, &ownerError{node: node, again: true})
				return
			}
			u, err := memberURL(base)
			if err != nil {
				s.writeError(w, r, fmt.Errorf("fleet member %s: %w", node, err))
				return
			}
			s.forward(w, r, &target{node: node, url: u, client: r.Context()}, turn)
		})
	}
}

// memberURL parses a member's base URL from the membership.
func memberURL(base string) (*url.URL, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, err
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("base URL %q is not http(s)://host:port", base)
	}
	return u, nil
}

func (s *Server) forward(w http.ResponseWriter, r *http.Request, t *target, turn bool) {
	if r.ContentLength != 0 && r.Body != nil && r.Body != http.NoBody {
		// The limit holds here, before anything goes to the owner, and a
		// body read in full can be resent on a fresh connection.
		data, err := s.readBody(w, r)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		r.Body, r.ContentLength, r.TransferEncoding = io.NopCloser(bytes.NewReader(data)), int64(len(data)), nil
		r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	defer context.AfterFunc(s.fwd.life, cancel)()
	if !turn {
		var stop context.CancelFunc
		ctx, stop = context.WithTimeout(ctx, forwardTimeout)
		defer stop()
	}
	s.fwd.proxy.ServeHTTP(w, r.WithContext(context.WithValue(ctx, targetKey, t)))
}

// forwardFailed is the proxy's ErrorHandler: no answer came from the owner.
func (s *Server) forwardFailed(w http.ResponseWriter, r *http.Request, err error) {
	t := r.Context().Value(targetKey).(*target)
	switch {
	case s.fwd.life.Err() != nil:
		s.writeError(w, r, session.ErrShuttingDown)
	case t.client.Err() != nil:
		// The client went away; the owner saw the request end
		// (client-disconnected) and nobody is left to answer.
		s.log.Debug("forwarded request ended by its client", zap.String("owner", t.node), zap.String("path", r.URL.Path))
	default:
		s.writeError(w, r, &ownerError{node: t.node, cause: fmt.Errorf("%s: %w", t.url.Redacted(), err)})
	}
}

// fleetListResponse is listResponse across the fleet: each summary as its
// replica wrote it, and the members that did not answer.
type fleetListResponse struct {
	Sessions    []json.RawMessage `json:"sessions"`
	NextCursor  string            `json:"next_cursor,omitempty"`
	Unavailable []string          `json:"unavailable,omitempty"`
}

// listed is one summary of a fleet-wide listing.
type listed struct {
	id  session.ID
	raw json.RawMessage
}

// listFleet answers GET /v1/sessions with the tenant's sessions on every
// member: this replica's and each peer's (asked with the caller's key and
// ForwardedByHeader, so it answers with its own only), merged newest first
// like one replica's listing. Each replica returns its newest q.Limit
// sessions before the cursor, so the merged page's q.Limit newest are the
// fleet's, and its last id is the next page's cursor on every member.
// Peers that do not answer within peerListTimeout are named in
// "unavailable" rather than failing the list.
func (s *Server) listFleet(w http.ResponseWriter, r *http.Request, q session.ListQuery) {
	tenant := principal(r).Tenant
	self := s.fwd.fleet.Self()
	type answer struct {
		node  string
		items []listed
		more  bool
		err   error
	}
	peers := s.fwd.fleet.Peers()
	answers := make(chan answer, len(peers))
	ctx, cancel := context.WithTimeout(r.Context(), peerListTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for node, base := range peers {
		if node == self {
			continue
		}
		wg.Go(func() {
			items, more, err := s.listPeer(ctx, r, base, tenant, q)
			answers <- answer{node, items, more, err}
		})
	}
	sums, next, err := s.pool.List(r.Context(), tenant, q)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	wg.Wait()
	close(answers)
	var all []listed
	for _, sum := range sums {
		raw, err := json.Marshal(sum)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		all = append(all, listed{sum.ID, raw})
	}
	more := next != ""
	unavailable := []string{}
	for a := range answers {
		if a.err != nil {
			s.log.Warn("peer did not list its sessions", zap.String("peer", a.node), zap.String("tenant", tenant), zap.Error(a.err))
			unavailable = append(unavailable, a.node)
			continue
		}
		all = append(all, a.items...)
		more = more || a.more
	}
	// Newest first: ids sort by creation time, whatever their node. A
	// session met twice (mid-handoff) is listed once.
	slices.SortFunc(all, func(a, b listed) int { return cmp.Compare(b.id, a.id) })
	all = slices.CompactFunc(all, func(a, b listed) bool { return a.id == b.id })
	resp := fleetListResponse{Sessions: []json.RawMessage{}}
	if len(all) > q.Limit {
		all, more = all[:q.Limit], true
	}
	for _, l := range all {
		resp.Sessions = append(resp.Sessions, l.raw)
	}
	if more && len(all) > 0 {
		resp.NextCursor = string(all[len(all)-1].id)
	}
	if len(unavailable) > 0 {
		slices.Sort(unavailable)
		resp.Unavailable = unavailable
	}
	writeJSON(w, http.StatusOK, resp)
}

// listPeer asks one peer for its own page of the caller's sessions.
func (s *Server) listPeer(ctx context.Context, r *http.Request, base, tenant string, q session.ListQuery) ([]listed, bool, error) {
	u, err := memberURL(base)
	if err != nil {
		return nil, false, err
	}
	u = u.JoinPath("/v1/sessions")
	v := url.Values{"limit": {strconv.Itoa(q.Limit)}}
	if q.User != "" {
		v.Set("user", q.User)
	}
	if q.Before != "" {
		v.Set("cursor", string(q.Before))
	}
	u.RawQuery = v.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, false, err
	}
	req.Header.Set("Authorization", r.Header.Get("Authorization"))
	if h := r.Header.Get(UserHeader); h != "" {
		req.Header.Set(UserHeader, h)
	}
	req.Header.Set(ForwardedByHeader, s.fwd.fleet.Self())
	resp, err := s.fwd.transport.RoundTrip(req)
	if err != nil {
		return nil, false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, false, fmt.Errorf("GET %s: status %d", u.Redacted(), resp.StatusCode)
	}
	var page struct {
		Sessions   []json.RawMessage `json:"sessions"`
		NextCursor string            `json:"next_cursor"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxPeerListBytes)).Decode(&page); err != nil {
		return nil, false, fmt.Errorf("GET %s: %w", u.Redacted(), err)
	}
	items := make([]listed, 0, len(page.Sessions))
	for _, raw := range page.Sessions {
		var head struct {
			ID     session.ID `json:"id"`
			Tenant string     `json:"tenant"`
		}
		if err := json.Unmarshal(raw, &head); err != nil || !head.ID.Valid() || head.Tenant != tenant {
			// A peer applies the same tenant rules; whatever it sends
			// that is not the caller's own session is not passed on.
			return nil, false, errors.New("GET " + u.Redacted() + ": a listed session is not one of the tenant's")
		}
		items = append(items, listed{head.ID, raw})
	}
	return items, page.NextCursor != "", nil
}
