package rollback

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/agentd/agentd/internal/canary"
)

// This file is the history of one replica of a fleet: versions are made by
// the fleet's leader, committed through a replicated log (a Replicator:
// internal/fleet, on Raft) and applied on every replica, the leader
// included, by ApplyCommitted. The history itself knows nothing of Raft.
//
// The log is the truth. Applying is idempotent by version number, so a log
// replayed after a restart changes nothing: a version already stored as it
// is in the log is skipped; one stored differently (a history this replica
// kept before it joined the fleet) is replaced, with every later one.

// Errors of a replicated history.
var (
	// ErrStale is a version the log applies that is not the next one:
	// another leader's version came first. The proposer makes it again.
	ErrStale = errors.New("the replicated log moved on: the version is not the next one")
	// ErrNotLeader is Execute on a replica that does not lead the fleet.
	ErrNotLeader = errors.New("this replica does not lead the fleet")
)

// Replicator carries a history's versions through a fleet's replicated
// log. *fleet.Node implements it.
type Replicator interface {
	// Leading reports whether this replica leads the fleet and may
	// propose versions. A new leader answers true only once it has applied
	// every entry committed before it led (it waits, within ctx).
	Leading(ctx context.Context) bool
	// Commit replicates v and returns once this replica has applied it
	// (ApplyCommitted ran): ErrStale if v was not the next version when
	// the log applied it, ErrNoQuorum if it could not be committed.
	Commit(ctx context.Context, v Version) error
	// Forward has the leader carry out op (Execute) and returns its result
	// once this replica has applied it. Errors keep their meaning
	// (ErrConflict, ErrInvalid, ErrUnknownVariant, ErrNotFound,
	// ErrReasonRequired, ErrNoQuorum).
	Forward(ctx context.Context, op Op) (Version, bool, error)
}

// PutStore is the Store of a replicated history, which writes the log's
// versions as they come. *boltdb.VersionStore implements it.
type PutStore interface {
	Store
	// Put stores v as version v.N, replacing what is stored there and
	// dropping every later version.
	Put(ctx context.Context, v Version) error
}

// fleet is the state of a replicated history. Fields but propMu are
// guarded by History.mu.
type fleet struct {
	// propMu serialises the leader's proposals. It is never held by
	// ApplyCommitted, which a proposal waits on.
	propMu sync.Mutex

	applied    Version        // the last version the log applied (N 0: none yet)
	appliedPol *canary.Policy // its policy, nil if it does not validate here
	unserved   error          // why applied is not served here
	changed    chan struct{}  // closed and replaced when a version is applied
}

// openReplica serves what the replica had before it stopped: its newest
// stored version, or, with none, canary.json unrecorded until the fleet's
// leader makes it a version. It never records a version itself.
func (h *History) openReplica(ctx context.Context) error {
	if _, ok := h.cfg.Store.(PutStore); !ok {
		return errors.New("rollback: a replicated history needs a store with Put")
	}
	h.changed = make(chan struct{})
	data, fileHash, err := h.readFile()
	if err != nil {
		return err
	}
	h.fileHash = fileHash
	if err := h.loadReverts(ctx); err != nil {
		return err
	}
	latest, ok, err := h.cfg.Store.Latest(ctx)
	if err != nil {
		return fmt.Errorf("read version history: %w", err)
	}
	if ok {
		p, perr := canary.Parse(latest.Canary, h.cfg.Known())
		if perr == nil {
			h.serve(p, latest)
			h.log.Info("serving the stored version until the fleet's log is applied", zap.Int("version", latest.N))
			return nil
		}
		h.log.Warn("the stored version does not validate against the configuration tree; canary.json serves until the fleet's log is applied",
			zap.Int("version", latest.N), zap.Error(perr))
	}
	p, err := canary.Parse(data, h.cfg.Known())
	if err != nil {
		if !ok {
			return fmt.Errorf("canary.json: %w: %w", ErrInvalid, err)
		}
		h.fileErr = err
		if p, err = canary.Compile(canary.Document{}, h.cfg.Known()); err != nil {
			return fmt.Errorf("the configuration tree cannot serve defaults: %w", err)
		}
	}
	h.serve(p, Version{At: h.cfg.Now().UTC(), Actor: ActorFile, Kind: "file", Reason: "canary.json at start, not yet a version of the fleet",
		Canary: p.JSON(), Hashes: h.cfg.Hashes(p), FileHash: fileHash, Diff: []string{}})
	return nil
}

// lead asks the replicator whether this replica leads, waiting a little at
// most (the watcher must not stall on a leader without quorum).
func (h *History) lead(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return h.cfg.Replicator.Leading(ctx)
}

// reloadReplica is Reload in a fleet. Every replica retries an applied
// version it could not serve and reads canary.json for its status; only the
// leader proposes it, when its hash differs from the applied version's.
func (h *History) reloadReplica(ctx context.Context, why string) (Version, bool, error) {
	h.retryUnserved()
	data, fileHash, err := h.readFile()
	if err != nil {
		return h.served(), false, err
	}
	if !h.lead(ctx) {
		h.mu.Lock()
		defer h.mu.Unlock()
		if fileHash != h.fileHash || h.fileErr != nil {
			h.fileHash = fileHash
			_, perr := canary.Parse(data, h.cfg.Known())
			h.setFileErrLocked(perr)
		}
		return h.cur, false, nil
	}
	h.propMu.Lock()
	defer h.propMu.Unlock()
	h.mu.Lock()
	h.fileHash = fileHash
	if h.applied.N > 0 && fileHash == h.applied.FileHash {
		h.setFileErrLocked(nil)
		cur := h.cur
		h.mu.Unlock()
		return cur, false, nil
	}
	c, err := h.fileChangeLocked(data, fileHash, why, h.appliedPol)
	h.setFileErrLocked(err)
	if err != nil {
		cur := h.cur
		h.mu.Unlock()
		return cur, false, err
	}
	v := h.fill(c.p, c.v, h.applied, h.applied.N > 0)
	h.mu.Unlock()
	if err := h.cfg.Replicator.Commit(ctx, v); err != nil {
		return h.served(), false, fmt.Errorf("propose canary.json as version %d: %w", v.N, err) // the next poll tries again
	}
	return v, true, nil
}

// setFileErrLocked records why canary.json does not serve (nil: it does),
// logging each new reason once.
func (h *History) setFileErrLocked(err error) {
	if err != nil && (h.fileErr == nil || h.fileErr.Error() != err.Error()) {
		h.log.Error("canary.json is invalid; the running configuration is unchanged, and the file is retried at every poll", zap.Int("version", h.cur.N), zap.Error(err))
	}
	h.fileErr = err
}

// refreshReplica is Refresh in a fleet: the leader records a "tree"
// version when the content hashes of what the applied version points at
// differ from its own; the others retry an applied version they could not
// serve.
func (h *History) refreshReplica(ctx context.Context, why string) (Version, bool, error) {
	h.retryUnserved()
	if !h.lead(ctx) {
		return h.served(), false, nil
	}
	h.propMu.Lock()
	defer h.propMu.Unlock()
	h.mu.Lock()
	if h.applied.N == 0 { // canary.json becomes the first version (Reload)
		cur := h.cur
		h.mu.Unlock()
		return cur, false, nil
	}
	c, changed, err := h.treeChangeLocked(h.applied, why)
	if err != nil || !changed {
		cur := h.cur
		h.mu.Unlock()
		return cur, false, err
	}
	v := h.fill(c.p, c.v, h.applied, true)
	h.mu.Unlock()
	if err := h.cfg.Replicator.Commit(ctx, v); err != nil {
		return h.served(), false, fmt.Errorf("propose the tree's content as version %d: %w", v.N, err)
	}
	return v, true, nil
}

func (h *History) served() Version {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.cur
}

// retryUnserved serves the applied version if it validates now.
func (h *History) retryUnserved() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.unserved == nil || h.applied.N == 0 {
		return
	}
	p, err := canary.Parse(h.applied.Canary, h.cfg.Known())
	if err != nil {
		return // said when it was applied
	}
	h.appliedPol, h.unserved = p, nil
	h.serve(p, h.applied)
	h.log.Info("a version of the fleet validates against this replica's tree now and serves", zap.Int("version", h.applied.N))
}

// replicate carries out op in a fleet: made here if this replica leads,
// else by the leader (Forward).
func (h *History) replicate(ctx context.Context, op Op) (Version, bool, error) {
	for attempt := 1; ; attempt++ {
		if !h.cfg.Replicator.Leading(ctx) {
			return h.cfg.Replicator.Forward(ctx, op)
		}
		v, changed, err := h.propose(ctx, op)
		if errors.Is(err, ErrStale) {
			if attempt < 3 {
				continue
			}
			err = fmt.Errorf("%w: %w", ErrConflict, err)
		}
		return v, changed, err
	}
}

// Execute carries out op on the leader of a fleet (another replica's
// forwarded change) and returns once it is applied here. ErrNotLeader: this
// replica does not lead.
func (h *History) Execute(ctx context.Context, op Op) (Version, bool, error) {
	if op.Reason == "" {
		return Version{}, false, ErrReasonRequired
	}
	for attempt := 1; ; attempt++ {
		if !h.cfg.Replicator.Leading(ctx) {
			return Version{}, false, ErrNotLeader
		}
		v, changed, err := h.propose(ctx, op)
		if errors.Is(err, ErrStale) {
			if attempt < 3 {
				continue
			}
			err = fmt.Errorf("%w: %w", ErrConflict, err)
		}
		return v, changed, err
	}
}

// propose makes op's version from the applied one and commits it. Proposals
// are serialised; the history's lock is not held while Raft commits (the
// log's apply takes it).
func (h *History) propose(ctx context.Context, op Op) (Version, bool, error) {
	h.propMu.Lock()
	defer h.propMu.Unlock()
	var old Version
	if op.Kind == "revert" {
		if op.ToVersion > h.Applied().N {
			return Version{}, false, fmt.Errorf("%w: %d", ErrNotFound, op.ToVersion)
		}
		var err error
		if old, err = h.cfg.Store.Get(ctx, op.ToVersion); err != nil {
			return Version{}, false, err
		}
	}
	h.mu.Lock()
	c, changed, err := h.opChangeLocked(op, h.applied, h.appliedPol, old)
	if err != nil || !changed {
		base := h.applied
		h.mu.Unlock()
		return base, false, err
	}
	v := h.fill(c.p, c.v, h.applied, h.applied.N > 0)
	h.mu.Unlock()
	if err := h.cfg.Replicator.Commit(ctx, v); err != nil {
		return Version{}, false, err
	}
	return v, true, nil
}

// ApplyCommitted applies a version the fleet's log committed, in log order,
// on every replica: v must be the next version after the last applied
// (ErrStale otherwise, on every replica alike, so the check is part of the
// log's deterministic state). It is stored unless stored already as it is
// (a replay), and served unless it does not validate against this
// replica's tree: then the previous version keeps serving, Status says why
// and every poll retries it.
func (h *History) ApplyCommitted(ctx context.Context, v Version) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if v.N != h.applied.N+1 {
		return fmt.Errorf("%w: version %d after version %d", ErrStale, v.N, h.applied.N)
	}
	stored, err := h.cfg.Store.Get(ctx, v.N)
	same := err == nil && sameVersion(stored, v)
	if !same {
		if err == nil {
			h.log.Warn("a stored version differs from the fleet's; the fleet's replaces it and every later one", zap.Int("version", v.N))
		}
		if err := h.cfg.Store.(PutStore).Put(ctx, v); err != nil {
			// Served all the same, to act as one with the fleet; the log's
			// replay at the next start stores it.
			h.log.Error("could not store a version of the fleet; it serves, and is stored when the log is replayed", zap.Int("version", v.N), zap.Error(err))
		}
		h.reverts = slices.DeleteFunc(h.reverts, func(r revert) bool { return r.by >= v.N })
	}
	h.applied = v
	p, perr := canary.Parse(v.Canary, h.cfg.Known())
	h.appliedPol = p
	if !same {
		h.noteRevertLocked(v, p)
	}
	close(h.changed)
	h.changed = make(chan struct{})
	if perr != nil {
		h.appliedPol = nil
		h.unserved = fmt.Errorf("version %d does not validate against this replica's configuration tree (version %d keeps serving; retried at every poll): %w", v.N, h.cur.N, perr)
		h.log.Error("a version of the fleet does not validate here", zap.Int("version", v.N), zap.Int("serving", h.cur.N), zap.Error(perr))
		return nil
	}
	h.unserved = nil
	if same && v.N <= h.cur.N {
		return nil // a replay of what serves already
	}
	h.serve(p, v)
	h.logApplied(v)
	return nil
}

// BeginRestore forgets the applied position before the log's snapshot is
// applied again from its first version (ApplyCommitted for each).
func (h *History) BeginRestore() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.applied, h.appliedPol = Version{}, nil
}

// Applied returns the last version the fleet's log applied here (N 0:
// none yet).
func (h *History) Applied() Version {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.applied
}

// WaitApplied returns once the log has applied version n here.
func (h *History) WaitApplied(ctx context.Context, n int) error {
	for {
		h.mu.Lock()
		done, ch := h.applied.N >= n, h.changed
		h.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("version %d is committed but not yet applied here: %w", n, context.Cause(ctx))
		}
	}
}

// Committed calls fn with every stored version up to n, oldest first (a
// snapshot of the log's state).
func (h *History) Committed(ctx context.Context, n int, fn func(Version) error) error {
	for i := 1; i <= n; i++ {
		v, err := h.cfg.Store.Get(ctx, i)
		if errors.Is(err, ErrNotFound) {
			continue // a version this replica failed to store (logged then)
		}
		if err != nil {
			return err
		}
		if err := fn(v); err != nil {
			return err
		}
	}
	return nil
}

// sameVersion tells whether a and b are the same version (a stored one and
// the log's): made at the same moment by the same actor with the same
// document.
func sameVersion(a, b Version) bool {
	return a.N == b.N && a.At.Equal(b.At) && a.Actor == b.Actor && a.Kind == b.Kind && a.Reason == b.Reason &&
		a.FileHash == b.FileHash && jsonEqual(a.Canary, b.Canary)
}

func jsonEqual(a, b json.RawMessage) bool {
	var ca, cb bytes.Buffer
	if json.Compact(&ca, a) != nil || json.Compact(&cb, b) != nil {
		return bytes.Equal(a, b)
	}
	return bytes.Equal(ca.Bytes(), cb.Bytes())
}
