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
	return st
}

// Reload reads canary.json and applies it if it changed since it was last
// read, or if it was refused (it may need what the tree has gained since).
// An invalid file is logged once per reason and reported by Status; the
// served version does not change.
func (h *History) Reload(ctx context.Context, why string) (Version, bool, error) {
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
	p, err := canary.Parse(data, h.cfg.Known())
	if err != nil {
		return Version{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if h.policy != nil {
		doc := p.Document()
		carried := false
		for _, halted := range h.policy.Document().Halted {
			dim, name := splitHalt(halted)
			before, ok1 := h.policy.Variant(dim, name)
			after, ok2 := p.Variant(dim, name)
			if ok1 && ok2 && sameVariant(before, after) && !slices.Contains(doc.Halted, halted) {
				doc.Halted = append(doc.Halted, halted)
				carried = true
			}
		}
		if carried {
			if p, err = canary.Compile(doc, h.cfg.Known()); err != nil {
				return Version{}, fmt.Errorf("%w: %w", ErrInvalid, err)
			}
			return h.commitLocked(ctx, p, Version{Actor: ActorFile, Reason: why + " (halts of unchanged variants kept)", Kind: "file", FileHash: fileHash, DiffersFromFile: true})
		}
	}
	return h.commitLocked(ctx, p, Version{Actor: ActorFile, Reason: why, Kind: "file", FileHash: fileHash})
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
	v.N = h.cur.N + 1
	v.At = h.cfg.Now().UTC()
	v.Canary = p.JSON()
	v.Hashes = h.cfg.Hashes(p)
	if v.FileHash == "" {
		v.FileHash = h.cur.FileHash
	}
	var prevDoc json.RawMessage
	if h.policy != nil {
		prevDoc = h.cur.Canary
	}
	v.Diff = Diff(prevDoc, v.Canary, h.cur.Hashes, v.Hashes)
	if err := h.cfg.Store.Append(ctx, v); err != nil {
		return Version{}, fmt.Errorf("store version %d: %w", v.N, err)
	}
	h.serve(p, v)
	h.log.Info("configuration version applied", zap.Int("version", v.N), zap.String("actor", v.Actor), zap.String("kind", v.Kind),
		zap.String("reason", v.Reason), zap.Strings("diff", v.Diff))
	return v, nil
}

// Refresh records a new version when what the served policy points at
// changed content (a rule version, sandbox.json, a skill set or an
// instructions file was edited), so the history says exactly what ran. The
// document is unchanged; it must still validate.
func (h *History) Refresh(ctx context.Context, why string) (Version, bool, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	p, err := canary.Parse(h.cur.Canary, h.cfg.Known())
	if err != nil {
		return h.cur, false, fmt.Errorf("%w: the served configuration does not validate against the new tree: %w", ErrInvalid, err)
	}
	if maps.Equal(h.cfg.Hashes(p), h.cur.Hashes) {
		return h.cur, false, nil
	}
	v, err := h.commitLocked(ctx, p, Version{Actor: ActorFile, Reason: why, Kind: "tree", FileHash: h.cur.FileHash, DiffersFromFile: h.cur.DiffersFromFile})
	return v, err == nil, err
}

// Apply validates doc and serves it as a new version. ifMatch must be the
// current version number (0 skips the check only when allowed by the
// caller); a reason is required.
func (h *History) Apply(ctx context.Context, doc []byte, ifMatch int, actor, reason string) (Version, error) {
	if reason == "" {
		return Version{}, ErrReasonRequired
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if ifMatch != h.cur.N {
		return Version{}, fmt.Errorf("%w (current is %d, If-Match %d)", ErrConflict, h.cur.N, ifMatch)
	}
	p, err := canary.Parse(doc, h.cfg.Known())
	if err != nil {
		return Version{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return h.commitLocked(ctx, p, Version{Actor: actor, Reason: reason, Kind: "apply", DiffersFromFile: true})
}

// Halt takes a variant out of service: its users get the stable value for
// new sessions, and sessions pinned to it move to stable at their next
// turn. Halting a halted variant changes nothing and returns the current
// version.
func (h *History) Halt(ctx context.Context, dim canary.Dimension, variant, actor, reason string, details map[string]any) (Version, bool, error) {
	if reason == "" {
		return Version{}, false, ErrReasonRequired
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.policy.Variant(dim, variant); !ok {
		return Version{}, false, fmt.Errorf("%w: %s has no variant %q (it has %v)", ErrUnknownVariant, dim, variant, h.policy.VariantNames(dim))
	}
	if h.policy.Halted(dim, variant) {
		return h.cur, false, nil
	}
	doc := h.policy.Document()
	doc.Halted = append(slices.Clone(doc.Halted), dim.String()+"/"+variant)
	p, err := canary.Compile(doc, h.cfg.Known())
	if err != nil {
		return Version{}, false, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	v, err := h.commitLocked(ctx, p, Version{Actor: actor, Reason: reason, Kind: "halt", Details: details, DiffersFromFile: true})
	return v, err == nil, err
}

// Revert serves version n's document again, as a new version.
func (h *History) Revert(ctx context.Context, n int, actor, reason string) (Version, error) {
	if reason == "" {
		return Version{}, ErrReasonRequired
	}
	old, err := h.cfg.Store.Get(ctx, n)
	if err != nil {
		return Version{}, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	p, err := canary.Parse(old.Canary, h.cfg.Known())
	if err != nil {
		return Version{}, fmt.Errorf("%w: version %d no longer validates against the configuration tree: %w", ErrInvalid, n, err)
	}
	v, err := h.commitLocked(ctx, p, Version{Actor: actor, Reason: reason, Kind: "revert", Details: map[string]any{"to_version": n}, DiffersFromFile: true})
	if err == nil {
		h.reverts = append(h.reverts, revert{to: n, by: v.N, doc: v.Canary, policy: p})
	}
	return v, err
}

// Get returns version n.
func (h *History) Get(ctx context.Context, n int) (Version, error) { return h.cfg.Store.Get(ctx, n) }

// List returns versions newest first, before version `before` (0: from
// the newest).
func (h *History) List(ctx context.Context, before, limit int) ([]Version, error) {
	return h.cfg.Store.List(ctx, before, limit)
}
