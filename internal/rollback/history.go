// Package rollback keeps the versioned, audited history of the canary
// configuration and changes it: apply a new document, halt a variant,
// return to an earlier version. Every change that takes effect is a new
// Version (who, when, why, a diff), stored before it is served; a change
// that fails validation changes nothing and the old policy keeps serving.
//
// Files stay the source of truth: the history remembers the hash of
// canary.json when it last read it. A file change becomes a new version;
// an API change is served and recorded but the status then says the
// running configuration differs from the file. Halts outlive restarts and
// file changes that leave the halted variant as it was: changing the
// variant in the file (or an API change without the halt) re-enables it.
package rollback

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"slices"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/agentd/agentd/internal/canary"
)

// Errors callers branch on.
var (
	ErrConflict       = errors.New("the configuration changed: If-Match does not name the current version")
	ErrReasonRequired = errors.New("a reason is required")
	ErrNotFound       = errors.New("no such version")
	ErrInvalid        = errors.New("invalid configuration")
	ErrUnknownVariant = errors.New("no such variant")
	// ErrNoQuorum is a change refused because the fleet has no leader that a
	// majority of its replicas reach (see Replicator). Turns go on with the
	// last applied configuration.
	ErrNoQuorum = errors.New("no quorum: the fleet has no leader that a majority of its replicas reach; configuration changes are refused until it has (turns go on with the last applied configuration)")
)

// Actors that are not admin tenants.
const (
	ActorFile = "file" // canary.json changed (watch, SIGHUP or start)
	ActorAuto = "auto" // the guard halted a variant
)

// Version is one configuration that took effect.
type Version struct {
	N      int       `json:"version"`
	At     time.Time `json:"at"`
	Actor  string    `json:"actor"`
	Reason string    `json:"reason"`
	Kind   string    `json:"kind"` // "file", "tree", "apply", "halt", "revert"
	// Canary is the canary.json document served.
	Canary json.RawMessage `json:"canary"`
	// Hashes are content hashes of what the document points at (rule
	// versions, sandbox.json, skill sets, instruction files), so a version
	// says exactly what ran.
	Hashes map[string]string `json:"hashes,omitempty"`
	// FileHash is the hash of canary.json when this version was made.
	FileHash string `json:"file_hash"`
	// Diff lists what changed against the previous version.
	Diff []string `json:"diff"`
	// Details carries structured facts of the change (the guard's numbers).
	Details map[string]any `json:"details,omitempty"`
	// DiffersFromFile says the served document is not canary.json as it
	// is on disk: an API change, a halt or revert, or halts carried over a
	// file change.
	DiffersFromFile bool `json:"differs_from_file"`
}

// Store persists versions. *boltdb.VersionStore implements it.
type Store interface {
	Append(ctx context.Context, v Version) error // v.N is the next number
	Latest(ctx context.Context) (Version, bool, error)
	Get(ctx context.Context, n int) (Version, error) // ErrNotFound
	List(ctx context.Context, before, limit int) ([]Version, error)
}

// Config wires a History.
type Config struct {
	Store  Store
	Router *canary.Router
	// Known validates values against the configuration tree.
	Known func() canary.Known
	// Hashes returns the content hashes of what a policy points at.
	Hashes func(p *canary.Policy) map[string]string
	// ReadFile returns canary.json's content; os.ErrNotExist means "no
	// file" (the defaults are served).
	ReadFile func() ([]byte, error)
	Now      func() time.Time
	Logger   *zap.Logger
	// OnApply is called after every version is served (the guard resets
	// its windows; the server re-binds halted sessions).
	OnApply func(p *canary.Policy, v Version)
	// Replicator, if set, makes the history one replica of a fleet's: new
	// versions are proposed through it (by its leader only) and served
	// when the replicated log applies them (ApplyCommitted). The Store must
	// then be a PutStore. Nil: a single replica, which stores its versions
	// itself.
	Replicator Replicator
}

// History serves and changes the canary configuration.
type History struct {
	cfg Config
	log *zap.Logger

	mu       sync.Mutex // serialises changes
	cur      Version
	policy   *canary.Policy
	fileHash string // of the file as last read
	fileErr  error  // why the file as last read is not served
	reverts  []revert

	fleet // the state of a replica of a fleet (replicated.go)
}

// Open loads the current version (applying canary.json if it changed since
// the last version, or if there is none) and serves it.
func Open(ctx context.Context, cfg Config) (*History, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Hashes == nil {
		cfg.Hashes = func(*canary.Policy) map[string]string { return nil }
	}
	h := &History{cfg: cfg, log: cfg.Logger.Named("rollback")}
	if cfg.Replicator != nil {
		return h, h.openReplica(ctx)
	}
	data, fileHash, err := h.readFile()
	if err != nil {
		return nil, err
	}
	latest, ok, err := cfg.Store.Latest(ctx)
	if err != nil {
		return nil, fmt.Errorf("read version history: %w", err)
	}
	h.fileHash = fileHash
	if err := h.loadReverts(ctx); err != nil {
		return nil, err
	}
	if ok {
		p, perr := canary.Parse(latest.Canary, cfg.Known())
		if latest.FileHash == fileHash && perr == nil {
			h.serve(p, latest)
			h.log.Info("serving the stored version", zap.Int("version", latest.N))
			return h, nil
		}
		h.cur, h.policy = latest, p // the base the file change is diffed and merged against
		if perr != nil {
			h.log.Warn("the stored version no longer validates; applying canary.json", zap.Int("version", latest.N), zap.Error(perr))
		}
	}
	if _, err := h.applyFileLocked(ctx, data, fileHash, "canary.json at start"); err != nil {
		if !ok || h.policy == nil {
			return nil, fmt.Errorf("canary.json: %w", err)
		}
		// The file is invalid but the last version still is: keep serving it.
		h.fileErr = err
		h.serve(h.policy, latest)
		h.log.Error("canary.json is invalid; serving the last good version", zap.Int("version", latest.N), zap.Error(err))
	}
	return h, nil
}

func (h *History) readFile() ([]byte, string, error) {
	data, err := h.cfg.ReadFile()
	switch {
	case errors.Is(err, fs.ErrNotExist):
		data = []byte("{}")
	case err != nil:
		return nil, "", fmt.Errorf("read canary.json: %w", err)
	}
	sum := sha256.Sum256(data)
	return data, hex.EncodeToString(sum[:]), nil
}

// serve makes p the router's policy as version v.
func (h *History) serve(p *canary.Policy, v Version) {
	h.cur, h.policy = v, p
	h.cfg.Router.Swap(p, v.N)
	if h.cfg.OnApply != nil {
		h.cfg.OnApply(p, v)
	}
}

// Status is the current state of the configuration.
type Status struct {
	Version Version `json:"version"`
	// DiffersFromFile is true when the served document is not canary.json
	// as it is on disk (an API change or rollback, or an invalid file).
	DiffersFromFile bool   `json:"differs_from_file"`
	FileError       string `json:"file_error,omitempty"`
	// Unserved says why a version the fleet committed is not served here
	// (it does not validate against this replica's tree); it is retried
	// at every poll.
	Unserved string `json:"unserved,omitempty"`
}

// Current returns the served policy and its version.
func (h *History) Current() (*canary.Policy, Version) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.policy, h.cur
}

// Status reports the served version and how it relates to the file.
func (h *History) Status() Status {
	h.mu.Lock()
	defer h.mu.Unlock()
	st := Status{Version: h.cur, DiffersFromFile: h.cur.DiffersFromFile || h.cur.FileHash != h.fileHash}
	if h.fileErr != nil {
		st.FileError = h.fileErr.Error()
		st.DiffersFromFile = true
	}
	if h.unserved != nil {
		st.Unserved = h.unserved.Error()
	}
	return st
}

// Reload reads canary.json and applies it if it changed since it was last
// read, or if it was refused (it may need what the tree has gained since).
// An invalid file is logged once per reason and reported by Status; the
// served version does not change.
func (h *History) Reload(ctx context.Context, why string) (Version, bool, error) {
	if h.cfg.Replicator != nil {
		return h.reloadReplica(ctx, why)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	data, fileHash, err := h.readFile()
	if err != nil {
		return h.cur, false, err
	}
	if fileHash == h.fileHash && h.fileErr == nil {
		return h.cur, false, nil
	}
	h.fileHash = fileHash
	v, err := h.applyFileLocked(ctx, data, fileHash, why)
	if err != nil {
		if h.fileErr == nil || h.fileErr.Error() != err.Error() { // retried at every poll: say it once per reason
			h.log.Error("canary.json is invalid; the running configuration is unchanged, and the file is retried at every poll", zap.Int("version", h.cur.N), zap.Error(err))
		}
		h.fileErr = err
		return h.cur, false, err
	}
	h.fileErr = nil
	return v, true, nil
}

// applyFileLocked applies the file's document, carrying forward halts of
// variants the file leaves as they were.
func (h *History) applyFileLocked(ctx context.Context, data []byte, fileHash, why string) (Version, error) {
	c, err := h.fileChangeLocked(data, fileHash, why, h.policy)
	if err != nil {
		return Version{}, err
	}
	return h.commitLocked(ctx, c.p, c.v)
}

// change is a version to make: the policy it serves and what the caller
// says of it (actor, reason, kind, details); fill completes it.
type change struct {
	p *canary.Policy
	v Version
}

// fileChangeLocked is the version the file's document makes over base (the
// policy served before, nil if none), carrying forward halts of variants
// the file leaves as they were.
func (h *History) fileChangeLocked(data []byte, fileHash, why string, base *canary.Policy) (change, error) {
	p, err := canary.Parse(data, h.cfg.Known())
	if err != nil {
		return change{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if base != nil {
		doc := p.Document()
		carried := false
		for _, halted := range base.Document().Halted {
			dim, name := splitHalt(halted)
			before, ok1 := base.Variant(dim, name)
			after, ok2 := p.Variant(dim, name)
			if ok1 && ok2 && sameVariant(before, after) && !slices.Contains(doc.Halted, halted) {
				doc.Halted = append(doc.Halted, halted)
				carried = true
			}
		}
		if carried {
			if p, err = canary.Compile(doc, h.cfg.Known()); err != nil {
				return change{}, fmt.Errorf("%w: %w", ErrInvalid, err)
			}
			return change{p, Version{Actor: ActorFile, Reason: why + " (halts of unchanged variants kept)", Kind: "file", FileHash: fileHash, DiffersFromFile: true}}, nil
		}
	}
	return change{p, Version{Actor: ActorFile, Reason: why, Kind: "file", FileHash: fileHash}}, nil
}

func splitHalt(s string) (canary.Dimension, string) {
	for i := range len(s) {
		if s[i] == '/' {
			d, _ := canary.ParseDimension(s[:i])
			return d, s[i+1:]
		}
	}
	return 0, ""
}

func sameVariant(a, b canary.Variant) bool {
	return a.Value == b.Value && a.Percent == b.Percent && slices.Equal(a.Users, b.Users) && slices.Equal(a.Tenants, b.Tenants)
}

// commitLocked stores p as the next version and serves it.
func (h *History) commitLocked(ctx context.Context, p *canary.Policy, v Version) (Version, error) {
	v = h.fill(p, v, h.cur, h.policy != nil)
	if err := h.cfg.Store.Append(ctx, v); err != nil {
		return Version{}, fmt.Errorf("store version %d: %w", v.N, err)
	}
	h.serve(p, v)
	h.noteRevertLocked(v, p)
	h.logApplied(v)
	return v, nil
}

// noteRevertLocked adds v to the reverts if it is one.
func (h *History) noteRevertLocked(v Version, p *canary.Policy) {
	if to, ok := revertedTo(v); ok {
		h.reverts = append(h.reverts, revert{to: to, by: v.N, doc: v.Canary, policy: p})
	}
}

// fill completes v as the version after base, serving p (hasBase: base
// is a version served before, which the diff is against).
func (h *History) fill(p *canary.Policy, v Version, base Version, hasBase bool) Version {
	v.N = base.N + 1
	v.At = h.cfg.Now().UTC()
	v.Canary = p.JSON()
	v.Hashes = h.cfg.Hashes(p)
	if v.FileHash == "" {
		v.FileHash = base.FileHash
	}
	var prevDoc json.RawMessage
	if hasBase {
		prevDoc = base.Canary
	}
	v.Diff = Diff(prevDoc, v.Canary, base.Hashes, v.Hashes)
	return v
}

func (h *History) logApplied(v Version) {
	h.log.Info("configuration version applied", zap.Int("version", v.N), zap.String("actor", v.Actor), zap.String("kind", v.Kind),
		zap.String("reason", v.Reason), zap.Strings("diff", v.Diff))
}

// Refresh records a new version when what the served policy points at
// changed content (a rule version, sandbox.json, a skill set or an
// instructions file was edited), so the history says exactly what ran. The
// document is unchanged; it must still validate. In a fleet only the
// leader records it (against the applied version's hashes); the other
// replicas retry a version they could not serve.
func (h *History) Refresh(ctx context.Context, why string) (Version, bool, error) {
	if h.cfg.Replicator != nil {
		return h.refreshReplica(ctx, why)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	c, changed, err := h.treeChangeLocked(h.cur, why)
	if err != nil || !changed {
		return h.cur, false, err
	}
	v, err := h.commitLocked(ctx, c.p, c.v)
	return v, err == nil, err
}

// treeChangeLocked is the "tree" version base needs if the content of what
// its document points at changed.
func (h *History) treeChangeLocked(base Version, why string) (change, bool, error) {
	p, err := canary.Parse(base.Canary, h.cfg.Known())
	if err != nil {
		return change{}, false, fmt.Errorf("%w: the served configuration does not validate against the new tree: %w", ErrInvalid, err)
	}
	if maps.Equal(h.cfg.Hashes(p), base.Hashes) {
		return change{}, false, nil
	}
	return change{p, Version{Actor: ActorFile, Reason: why, Kind: "tree", FileHash: base.FileHash, DiffersFromFile: base.DiffersFromFile}}, true, nil
}

// Op is an admin change of the configuration: what Apply, Halt and Revert
// ask for. In a fleet it travels to the leader, which makes the version.
type Op struct {
	Kind      string          `json:"kind"` // "apply", "halt" or "revert"
	Doc       json.RawMessage `json:"doc,omitempty"`
	IfMatch   int             `json:"if_match,omitempty"`
	Dimension string          `json:"dimension,omitempty"`
	Variant   string          `json:"variant,omitempty"`
	ToVersion int             `json:"to_version,omitempty"`
	Actor     string          `json:"actor"`
	Reason    string          `json:"reason"`
	Details   map[string]any  `json:"details,omitempty"`
}

// opChangeLocked is the version op makes over base (served by basePol);
// changed is false for a halt of a halted variant. old is the version a
// revert returns to, read before the lock.
func (h *History) opChangeLocked(op Op, base Version, basePol *canary.Policy, old Version) (change, bool, error) {
	switch op.Kind {
	case "apply":
		if op.IfMatch != base.N {
			return change{}, false, fmt.Errorf("%w (current is %d, If-Match %d)", ErrConflict, base.N, op.IfMatch)
		}
		p, err := canary.Parse(op.Doc, h.cfg.Known())
		if err != nil {
			return change{}, false, fmt.Errorf("%w: %w", ErrInvalid, err)
		}
		return change{p, Version{Actor: op.Actor, Reason: op.Reason, Kind: "apply", DiffersFromFile: true}}, true, nil
	case "halt":
		dim, err := canary.ParseDimension(op.Dimension)
		if err != nil {
			return change{}, false, fmt.Errorf("%w: %w", ErrUnknownVariant, err)
		}
		if basePol == nil {
			return change{}, false, fmt.Errorf("%w: version %d is not served here", ErrInvalid, base.N)
		}
		if _, ok := basePol.Variant(dim, op.Variant); !ok {
			return change{}, false, fmt.Errorf("%w: %s has no variant %q (it has %v)", ErrUnknownVariant, dim, op.Variant, basePol.VariantNames(dim))
		}
		if basePol.Halted(dim, op.Variant) {
			return change{}, false, nil
		}
		doc := basePol.Document()
		doc.Halted = append(slices.Clone(doc.Halted), dim.String()+"/"+op.Variant)
		p, err := canary.Compile(doc, h.cfg.Known())
		if err != nil {
			return change{}, false, fmt.Errorf("%w: %w", ErrInvalid, err)
		}
		return change{p, Version{Actor: op.Actor, Reason: op.Reason, Kind: "halt", Details: op.Details, DiffersFromFile: true}}, true, nil
	case "revert":
		p, err := canary.Parse(old.Canary, h.cfg.Known())
		if err != nil {
			return change{}, false, fmt.Errorf("%w: version %d no longer validates against the configuration tree: %w", ErrInvalid, old.N, err)
		}
		return change{p, Version{Actor: op.Actor, Reason: op.Reason, Kind: "revert", Details: map[string]any{"to_version": old.N}, DiffersFromFile: true}}, true, nil
	}
	return change{}, false, fmt.Errorf("%w: unknown change %q", ErrInvalid, op.Kind)
}

// do carries out op: in a fleet through the leader (replicated.go), else
// here, as the next version.
func (h *History) do(ctx context.Context, op Op) (Version, bool, error) {
	if op.Reason == "" {
		return Version{}, false, ErrReasonRequired
	}
	if h.cfg.Replicator != nil {
		return h.replicate(ctx, op)
	}
	var old Version
	if op.Kind == "revert" {
		var err error
		if old, err = h.cfg.Store.Get(ctx, op.ToVersion); err != nil {
			return Version{}, false, err
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	c, changed, err := h.opChangeLocked(op, h.cur, h.policy, old)
	if err != nil || !changed {
		return h.cur, false, err
	}
	v, err := h.commitLocked(ctx, c.p, c.v)
	if err != nil {
		return Version{}, false, err
	}
	return v, true, nil
}

// Apply validates doc and serves it as a new version. ifMatch must be the
// current version number; a reason is required.
func (h *History) Apply(ctx context.Context, doc []byte, ifMatch int, actor, reason string) (Version, error) {
	v, _, err := h.do(ctx, Op{Kind: "apply", Doc: doc, IfMatch: ifMatch, Actor: actor, Reason: reason})
	return v, err
}

// Halt takes a variant out of service: its users get the stable value for
// new sessions, and sessions pinned to it move to stable at their next
// turn. Halting a halted variant changes nothing and returns the current
// version.
func (h *History) Halt(ctx context.Context, dim canary.Dimension, variant, actor, reason string, details map[string]any) (Version, bool, error) {
	return h.do(ctx, Op{Kind: "halt", Dimension: dim.String(), Variant: variant, Actor: actor, Reason: reason, Details: details})
}

// Revert serves version n's document again, as a new version.
func (h *History) Revert(ctx context.Context, n int, actor, reason string) (Version, error) {
	v, _, err := h.do(ctx, Op{Kind: "revert", ToVersion: n, Actor: actor, Reason: reason})
	return v, err
}

// Get returns version n.
func (h *History) Get(ctx context.Context, n int) (Version, error) { return h.cfg.Store.Get(ctx, n) }

// List returns versions newest first, before version `before` (0: from
// the newest).
func (h *History) List(ctx context.Context, before, limit int) ([]Version, error) {
	return h.cfg.Store.List(ctx, before, limit)
}
