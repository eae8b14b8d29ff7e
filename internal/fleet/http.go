package fleet

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/hashicorp/raft"
	"go.uber.org/zap"

	"github.com/agentd/agentd/internal/rollback"
)

// Routes of the cluster channel, under /cluster/v1 on the API listener.
const (
	pathRaft    = "/cluster/v1/raft"    // GET, upgraded to the Raft stream
	pathWhoami  = "/cluster/v1/whoami"  // GET: name, state, leader, applied version
	pathPropose = "/cluster/v1/propose" // POST: an admin write for the leader
	pathSamples = "/cluster/v1/samples" // POST: the guard's samples for the leader
)

// Error codes of the cluster channel, in the API's error shape. The codes
// of rollback's errors keep their meaning across the hop.
const (
	codeUnauthorized   = "unauthorized"
	codeNotLeader      = "not_leader"
	codeNoQuorum       = "no_quorum"
	codeConflict       = "precondition_failed"
	codeInvalid        = "invalid_config"
	codeUnknownVariant = "unknown_variant"
	codeNotFound       = "not_found"
	codeReason         = "reason_required"
	codeBadRequest     = "invalid_request"
	codeInternal       = "internal"
)

var sentinels = map[string]error{
	codeNoQuorum: rollback.ErrNoQuorum, codeConflict: rollback.ErrConflict, codeInvalid: rollback.ErrInvalid,
	codeUnknownVariant: rollback.ErrUnknownVariant, codeNotFound: rollback.ErrNotFound, codeReason: rollback.ErrReasonRequired,
	codeNotLeader: rollback.ErrNotLeader,
}

// maxClusterBody bounds a cluster request's body.
const maxClusterBody = 16 << 20

// Handler serves /cluster/v1/*: mount it on the API listener outside the
// API keys' authentication. Every request must carry the cluster key.
func (n *Node) Handler() http.Handler { return n.mux }

func (n *Node) routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+pathRaft, n.authed(n.stream.serveUpgrade))
	mux.HandleFunc("GET "+pathWhoami, n.authed(n.whoami))
	mux.HandleFunc("POST "+pathPropose, n.authed(n.propose))
	mux.HandleFunc("POST "+pathSamples, n.authed(n.samplesIn))
	mux.HandleFunc("POST "+pathRemove, n.authed(n.serveRemove))
	mux.HandleFunc("/cluster/", n.authed(func(w http.ResponseWriter, r *http.Request) {
		writeErr(w, http.StatusNotFound, codeNotFound, "no route "+r.Method+" "+r.URL.Path)
	}))
	return mux
}

// authed refuses a request without the cluster key (401, logged without
// the key).
func (n *Node) authed(next http.HandlerFunc) http.HandlerFunc {
	want := []byte("Bearer " + n.cfg.Key)
	return func(w http.ResponseWriter, r *http.Request) {
		got := []byte(r.Header.Get("Authorization"))
		if subtle.ConstantTimeCompare(got, want) != 1 {
			n.log.Warn("cluster request refused: no or wrong cluster key", zap.String("remote", r.RemoteAddr),
				zap.String("method", r.Method), zap.String("path", r.URL.Path))
			w.Header().Set("WWW-Authenticate", `Bearer realm="agentd-cluster"`)
			writeErr(w, http.StatusUnauthorized, codeUnauthorized, "the cluster channel needs the fleet's cluster key (AGENTD_CLUSTER_KEY)")
			return
		}
		next(w, r)
	}
}

func writeErr(w http.ResponseWriter, status int, code, msg string) {
	var body errorBody
	body.Error.Code, body.Error.Message = code, msg
	writeJSON(w, status, body)
}

type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// Whoami is a member's answer to GET /cluster/v1/whoami.
type Whoami struct {
	Name     string `json:"name"`
	URL      string `json:"url"`
	HasState bool   `json:"has_state"` // it has Raft state (it was in a fleet)
	Leader   string `json:"leader"`
	// AppliedVersion is the last configuration version its log applied.
	AppliedVersion int `json:"applied_version"`
}

func (n *Node) whoami(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, n.status())
}

func (n *Node) status() Whoami {
	has, _ := raft.HasExistingState(n.store, n.store, n.snaps)
	st := Whoami{Name: n.cfg.Node, URL: n.self, HasState: has, Leader: n.Leader()}
	n.mu.Lock()
	h := n.h
	n.mu.Unlock()
	if h != nil {
		st.AppliedVersion = h.Applied().N
	}
	return st
}

type proposeRequest struct {
	Op    *rollback.Op `json:"op,omitempty"`
	Moved *movedEntry  `json:"moved,omitempty"`
}

type proposeResponse struct {
	Version *rollback.Version `json:"version,omitempty"`
	Changed bool              `json:"changed"`
	Index   uint64            `json:"index,omitempty"` // of a moved entry
}

// propose runs a follower's admin write on this leader.
func (n *Node) propose(w http.ResponseWriter, r *http.Request) {
	var req proposeRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxClusterBody)).Decode(&req); err != nil || (req.Op == nil) == (req.Moved == nil) {
		writeErr(w, http.StatusBadRequest, codeBadRequest, "want {\"op\": ...} or {\"moved\": ...}")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), n.cfg.WriteTimeout)
	defer cancel()
	if !n.Leading(ctx) {
		writeErr(w, http.StatusConflict, codeNotLeader, n.cfg.Node+" does not lead the fleet (leader: "+n.Leader()+")")
		return
	}
	if req.Moved != nil {
		resp, index, err := n.apply(ctx, entry{Moved: req.Moved})
		if e, ok := resp.(error); ok && err == nil {
			err = e
		}
		if err != nil {
			n.writeRollbackErr(w, err)
			return
		}
		writeJSON(w, http.StatusOK, proposeResponse{Index: index})
		return
	}
	n.mu.Lock()
	h := n.h
	n.mu.Unlock()
	v, changed, err := h.Execute(ctx, *req.Op)
	if err != nil {
		n.writeRollbackErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, proposeResponse{Version: &v, Changed: changed})
}

// writeRollbackErr answers err with the code of its sentinel.
func (n *Node) writeRollbackErr(w http.ResponseWriter, err error) {
	for _, code := range []string{codeNotLeader, codeNoQuorum, codeConflict, codeReason, codeInvalid, codeUnknownVariant, codeNotFound} {
		if errors.Is(err, sentinels[code]) {
			status := http.StatusBadRequest
			switch code {
			case codeNotLeader:
				status = http.StatusConflict
			case codeNoQuorum:
				status = http.StatusServiceUnavailable
			case codeConflict:
				status = http.StatusPreconditionFailed
			case codeUnknownVariant, codeNotFound:
				status = http.StatusNotFound
			}
			writeErr(w, status, code, err.Error())
			return
		}
	}
	n.log.Error("a forwarded change failed", zap.Error(err))
	writeErr(w, http.StatusInternalServerError, codeInternal, "internal error on the leader: "+err.Error())
}

// samplesIn gives a follower's samples to this leader's guard.
func (n *Node) samplesIn(w http.ResponseWriter, r *http.Request) {
	var batch []sampled
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxClusterBody)).Decode(&batch); err != nil {
		writeErr(w, http.StatusBadRequest, codeBadRequest, "want a JSON array of samples")
		return
	}
	if !n.IsLeader() {
		writeErr(w, http.StatusConflict, codeNotLeader, n.cfg.Node+" does not lead the fleet")
		return
	}
	n.mu.Lock()
	observe := n.observe
	n.mu.Unlock()
	for _, s := range batch {
		observe(s.Sample, s.Values)
	}
	w.WriteHeader(http.StatusNoContent)
}

// errNoLeader is a leader not known or not reachable (retried until the
// write's deadline).
var errNoLeader = errors.New("no leader")

// forward sends a proposal to the leader and decodes its answer into out,
// trying again while there is no leader (or it just changed) until the
// write timeout: then rollback.ErrNoQuorum.
func (n *Node) forward(ctx context.Context, req proposeRequest, out *proposeResponse) error {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.WriteTimeout)
	defer cancel()
	var last error
	for {
		err := n.toLeader(ctx, pathPropose, req, out)
		if err == nil || !(errors.Is(err, errNoLeader) || errors.Is(err, rollback.ErrNotLeader)) {
			return err
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %v", rollback.ErrNoQuorum, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// toLeader POSTs body to the leader's path and decodes a 2xx answer into
// out (if not nil). An error answer becomes its rollback sentinel.
func (n *Node) toLeader(ctx context.Context, path string, body, out any) error {
	leader := n.Leader()
	if leader == "" {
		return fmt.Errorf("%w: no leader is known", errNoLeader)
	}
	if leader == n.cfg.Node {
		return fmt.Errorf("%w: this replica is being elected leader", errNoLeader)
	}
	base, ok := n.members()[leader]
	if !ok {
		return fmt.Errorf("%w: the leader %s is not a known member", errNoLeader, leader)
	}
	data, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+path, bytes.NewReader(data))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+n.cfg.Key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := n.client.Do(req)
	var dial *net.OpError
	if err != nil && errors.As(err, &dial) && dial.Op == "dial" {
		return fmt.Errorf("%w: %s: %v", errNoLeader, leader, err) // not sent: safe to try again
	}
	if err != nil { // sent: the leader may have carried it out, so it is not sent again
		return fmt.Errorf("%w: the leader %s did not answer; the change may or may not be applied (see the version history): %v", rollback.ErrNoQuorum, leader, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxClusterBody))
	if err != nil {
		return fmt.Errorf("%w: the leader %s's answer was cut; the change may or may not be applied (see the version history): %v", rollback.ErrNoQuorum, leader, err)
	}
	if resp.StatusCode/100 == 2 {
		if out == nil || resp.StatusCode == http.StatusNoContent {
			return nil
		}
		return json.Unmarshal(raw, out)
	}
	var eb errorBody
	_ = json.Unmarshal(raw, &eb)
	msg := strings.TrimSpace(eb.Error.Message)
	if s, ok := sentinels[eb.Error.Code]; ok {
		if strings.HasPrefix(msg, s.Error()) { // the message starts with the sentinel's: keep it once
			msg = strings.TrimPrefix(strings.TrimPrefix(msg, s.Error()), ": ")
		}
		if msg == "" {
			return s
		}
		return fmt.Errorf("%w: %s", s, msg)
	}
	return fmt.Errorf("the leader %s answered %s: %s", leader, resp.Status, msg)
}
