// Package handoff moves a retiring replica's sessions to another replica of
// the fleet: each session's record, history and workspace, with its id kept
// valid, so a scale-down strands nobody (docs/fleet.md, "Scaling down").
//
// For each session stored on the source and owned by it: the pool holds it
// (running turn given a grace, then cancelled with reason "shutdown"; every
// other request answers 503 owner_unavailable and is retried by clients),
// it is streamed to the target as a tar stream (session.json, then the
// workspace under workspace/), the target unpacks and stores it, the fleet's
// directory records the new owner through the replicated log, and only then
// is the source's copy removed. A session that fails to move stays served
// where it was, and the move can be run again (a stray copy a failed move
// left on the target is replaced).
//
// Archives are hand-built with archive/tar from the standard library: the
// format is a stream (no size known in advance, no temporary file), and
// unpacking goes through os.Root so that a link a tenant's command planted
// in its workspace can never carry a write out of the staging directory.
package handoff

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/agentd/agentd/internal/session"
)

// Fleet is what a handoff needs of the fleet (*fleet.Node).
type Fleet interface {
	Self() string
	Peers() map[string]string // every other member: name -> base URL
	// Owner says which member serves a session now.
	Owner(id session.ID) (node, url string, ok bool)
	// Moved records through the replicated log that ids are now served by
	// to, and returns once that is applied here.
	Moved(ctx context.Context, ids []session.ID, to string) error
}

// Pool is the part of *session.Pool a handoff uses.
type Pool interface {
	Stored(ctx context.Context) ([]session.Key, error)
	Hold(ctx context.Context, tenant string, id session.ID, grace time.Duration) (*session.Session, string, error)
	Unhold(ctx context.Context, tenant string, id session.ID, moved bool)
	Import(ctx context.Context, s *session.Session, staged string, replace bool) error
	StagingDir() string
}

// Config wires a Mover.
type Config struct {
	Pool  Pool
	Fleet Fleet
	// Key is the cluster key, sent to the target.
	Key string
	// Grace is how long a running turn may go on before the handoff
	// cancels it. Default 30 s.
	Grace time.Duration
	// Client reaches the other replicas. Default: a client without a
	// proxy.
	Client *http.Client
	Logger *zap.Logger
}

// Paths the Handler serves, under Prefix (mounted behind the cluster key
// check).
const (
	Prefix     = "/cluster/v1/handoff/"
	ImportPath = Prefix + "import"
	MovePath   = Prefix + "move"
)

// maxSessionJSON bounds session.json in an incoming archive.
const maxSessionJSON = 256 << 20

// Mover moves sessions between replicas.
type Mover struct {
	cfg Config
	log *zap.Logger
}

// New returns a Mover.
func New(cfg Config) *Mover {
	if cfg.Grace <= 0 {
		cfg.Grace = 30 * time.Second
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 4}}
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	return &Mover{cfg: cfg, log: cfg.Logger.Named("handoff")}
}

// Result says what a move did.
type Result struct {
	From   string    `json:"from"`
	To     string    `json:"to"`
	Moved  int       `json:"moved"`
	Failed []Failure `json:"failed"`
}

// Failure is a session that stayed where it was, and why.
type Failure struct {
	ID    session.ID `json:"id"`
	Error string     `json:"error"`
}

// Errors of Move.
var (
	ErrUnknownNode = errors.New("no such member of the fleet")
	ErrSelf        = errors.New("a replica cannot move its sessions to itself")
	ErrUnreachable = errors.New("the replica to move from does not answer")
	ErrRefused     = errors.New("the move was refused")
)

// Move hands every session stored here and owned here to the member to.
// Sessions that fail stay served here and are listed in the result.
func (m *Mover) Move(ctx context.Context, to string) (Result, error) {
	self := m.cfg.Fleet.Self()
	res := Result{From: self, To: to, Failed: []Failure{}}
	if to == self {
		return res, ErrSelf
	}
	url, ok := m.cfg.Fleet.Peers()[to]
	if !ok {
		return res, fmt.Errorf("%w: %q", ErrUnknownNode, to)
	}
	keys, err := m.cfg.Pool.Stored(ctx)
	if err != nil {
		return res, err
	}
	m.log.Info("handoff started", zap.String("to", to), zap.Int("stored_sessions", len(keys)))
	for _, k := range keys {
		if owner, _, ok := m.cfg.Fleet.Owner(k.ID); !ok || owner != self {
			continue // a stray copy of a session served elsewhere
		}
		if err := m.moveOne(ctx, k, to, url); err != nil {
			if errors.Is(err, session.ErrNotFound) {
				continue // deleted meanwhile
			}
			m.log.Warn("a session did not move; it is still served here", zap.String("session_id", string(k.ID)), zap.String("to", to), zap.Error(err))
			res.Failed = append(res.Failed, Failure{ID: k.ID, Error: err.Error()})
			if ctx.Err() != nil {
				return res, context.Cause(ctx)
			}
			continue
		}
		res.Moved++
	}
	m.log.Info("handoff finished", zap.String("to", to), zap.Int("moved", res.Moved), zap.Int("failed", len(res.Failed)))
	return res, nil
}

// MoveFrom moves the sessions of the member from to the member to: here,
// or by asking from over the cluster channel (the admin API of any replica
// can start it).
func (m *Mover) MoveFrom(ctx context.Context, from, to string) (Result, error) {
	if from == m.cfg.Fleet.Self() {
		return m.Move(ctx, to)
	}
	url, ok := m.cfg.Fleet.Peers()[from]
	if !ok {
		return Result{From: from, To: to}, fmt.Errorf("%w: %q", ErrUnknownNode, from)
	}
	body, _ := json.Marshal(map[string]string{"to": to})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(url, "/")+MovePath, bytes.NewReader(body))
	if err != nil {
		return Result{}, err
	}
	req.Header.Set("Authorization", "Bearer "+m.cfg.Key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := m.cfg.Client.Do(req)
	if err != nil {
		return Result{From: from, To: to}, fmt.Errorf("%w: %s: %w", ErrUnreachable, from, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		_ = json.Unmarshal(raw, &e)
		if resp.StatusCode == http.StatusBadRequest {
			return Result{From: from, To: to}, fmt.Errorf("%w: %s", ErrRefused, e.Error.Message)
		}
		return Result{From: from, To: to}, fmt.Errorf("%s answered %s: %s", from, resp.Status, e.Error.Message)
	}
	var res Result
	if err := json.Unmarshal(raw, &res); err != nil {
		return Result{From: from, To: to}, fmt.Errorf("%s answered: %w", from, err)
	}
	return res, nil
}

func (m *Mover) moveOne(ctx context.Context, k session.Key, to, url string) error {
	s, dir, err := m.cfg.Pool.Hold(ctx, k.Tenant, k.ID, m.cfg.Grace)
	if err != nil {
		return err
	}
	moved := false
	defer func() { m.cfg.Pool.Unhold(context.WithoutCancel(ctx), k.Tenant, k.ID, moved) }()
	if err := m.send(ctx, s, dir, url); err != nil {
		return err
	}
	if err := m.cfg.Fleet.Moved(ctx, []session.ID{k.ID}, to); err != nil {
		return fmt.Errorf("record the new owner: %w", err)
	}
	moved = true
	return nil
}

// send streams s and its workspace to the replica at url.
func (m *Mover) send(ctx context.Context, s *session.Session, dir, url string) error {
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writeArchive(pw, s, dir)) }()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(url, "/")+ImportPath, pr)
	if err != nil {
		pr.Close()
		return err
	}
	req.Header.Set("Authorization", "Bearer "+m.cfg.Key)
	req.Header.Set("Content-Type", "application/x-tar")
	resp, err := m.cfg.Client.Do(req)
	if err != nil {
		return fmt.Errorf("send to %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("the target answered %s: %s", resp.Status, bytes.TrimSpace(b))
	}
	return nil
}

// writeArchive writes session.json, then the workspace's directories,
// regular files and links (nothing else: no FIFOs or devices) under
// workspace/. Files are read through os.Root: a link cannot make agentd read
// outside the workspace.
func writeArchive(w io.Writer, s *session.Session, dir string) error {
	tw := tar.NewWriter(w)
	doc, err := json.Marshal(s)
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Name: "session.json", Mode: 0o600, Size: int64(len(doc)), Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	if _, err := tw.Write(doc); err != nil {
		return err
	}
	root, err := os.OpenRoot(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return tw.Close() // no workspace: the target makes an empty one
	}
	if err != nil {
		return err
	}
	defer root.Close()
	err = fs.WalkDir(root.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == "." {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		name := "workspace/" + p
		switch {
		case d.IsDir():
			return tw.WriteHeader(&tar.Header{Name: name + "/", Mode: int64(info.Mode().Perm()), Typeflag: tar.TypeDir, ModTime: info.ModTime()})
		case d.Type()&fs.ModeSymlink != 0:
			target, err := root.Readlink(p)
			if err != nil {
				return err
			}
			return tw.WriteHeader(&tar.Header{Name: name, Linkname: target, Mode: 0o777, Typeflag: tar.TypeSymlink, ModTime: info.ModTime()})
		case d.Type().IsRegular():
			f, err := root.Open(p)
			if err != nil {
				return err
			}
			defer f.Close()
			fi, err := f.Stat()
			if err != nil {
				return err
			}
			if !fi.Mode().IsRegular() { // replaced since the walk saw it
				return nil
			}
			if err := tw.WriteHeader(&tar.Header{Name: name, Mode: int64(fi.Mode().Perm()), Size: fi.Size(), Typeflag: tar.TypeReg, ModTime: fi.ModTime()}); err != nil {
				return err
			}
			_, err = io.CopyN(tw, f, fi.Size())
			return err
		}
		return nil // FIFOs, sockets, devices: not part of a workspace's content
	})
	if err != nil {
		return fmt.Errorf("pack the workspace: %w", err)
	}
	return tw.Close()
}

// Handler serves ImportPath (a session from a replica handing it over) and
// MovePath (start a move of this replica's sessions: {"to": "node"}). Mount
// it behind the cluster key check.
func (m *Mover) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+ImportPath, m.serveImport)
	mux.HandleFunc("POST "+MovePath, func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			To string `json:"to"`
		}
		dec := json.NewDecoder(io.LimitReader(r.Body, 4096))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&body); err != nil || body.To == "" {
			writeErr(w, http.StatusBadRequest, "invalid_request", `send {"to": "<node>"}`)
			return
		}
		res, err := m.Move(r.Context(), body.To)
		switch {
		case errors.Is(err, ErrUnknownNode), errors.Is(err, ErrSelf):
			writeErr(w, http.StatusBadRequest, "invalid_request", err.Error())
		case err != nil:
			writeErr(w, http.StatusInternalServerError, "internal", err.Error())
		default:
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(res)
		}
	})
	return mux
}

func writeErr(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": code, "message": msg}})
}

func (m *Mover) serveImport(w http.ResponseWriter, r *http.Request) {
	s, err := m.receive(r.Context(), r.Body)
	switch {
	case errors.Is(err, session.ErrInvalid), errors.Is(err, errArchive):
		writeErr(w, http.StatusBadRequest, "invalid_request", err.Error())
	case errors.Is(err, session.ErrExists):
		writeErr(w, http.StatusConflict, "conflict", err.Error())
	case err != nil:
		m.log.Error("an incoming session was not stored", zap.Error(err))
		writeErr(w, http.StatusInternalServerError, "internal", err.Error())
	default:
		m.log.Info("session received from another replica", zap.String("session_id", string(s.ID)), zap.String("tenant", s.Tenant))
		w.WriteHeader(http.StatusNoContent)
	}
}

var errArchive = errors.New("not a session archive")

// receive unpacks an archive of writeArchive and imports the session.
func (m *Mover) receive(ctx context.Context, body io.Reader) (*session.Session, error) {
	tr := tar.NewReader(body)
	h, err := tr.Next()
	if err != nil || h.Name != "session.json" || h.Typeflag != tar.TypeReg || h.Size > maxSessionJSON {
		return nil, fmt.Errorf("%w: it must start with session.json", errArchive)
	}
	var s session.Session
	dec := json.NewDecoder(io.LimitReader(tr, maxSessionJSON))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("%w: session.json: %w", errArchive, err)
	}
	if !s.ID.Valid() {
		return nil, fmt.Errorf("%w: session id %q", session.ErrInvalid, s.ID)
	}
	if owner, _, ok := m.cfg.Fleet.Owner(s.ID); ok && owner == m.cfg.Fleet.Self() {
		// Served here already: never overwrite a live session.
		return nil, fmt.Errorf("%w: %s is owned by this replica", session.ErrExists, s.ID)
	}
	if err := os.MkdirAll(m.cfg.Pool.StagingDir(), 0o700); err != nil {
		return nil, err
	}
	staged, err := os.MkdirTemp(m.cfg.Pool.StagingDir(), "in-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(staged) // renamed away on success
	if err := unpack(tr, staged); err != nil {
		return nil, err
	}
	// A copy here that the directory does not name as served here is a
	// stray of a move that did not finish: replaced.
	if err := m.cfg.Pool.Import(ctx, &s, staged, true); err != nil {
		return nil, err
	}
	return &s, nil
}

// unpack writes the workspace/ entries of tr into dir, through os.Root:
// names are local paths, links are created as they were but never
// followed by a write.
func unpack(tr *tar.Reader, dir string) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%w: %w", errArchive, err)
		}
		rel, ok := strings.CutPrefix(h.Name, "workspace/")
		rel = strings.TrimSuffix(rel, "/")
		if !ok || rel == "" || !filepath.IsLocal(rel) || path.Clean(rel) != rel {
			return fmt.Errorf("%w: entry %q is outside the workspace", errArchive, h.Name)
		}
		mode := fs.FileMode(h.Mode).Perm()
		switch h.Typeflag {
		case tar.TypeDir:
			if err := root.MkdirAll(rel, 0o700); err != nil {
				return err
			}
			if err := root.Chmod(rel, mode|0o700); err != nil {
				return err
			}
		case tar.TypeSymlink:
			if err := root.Symlink(h.Linkname, rel); err != nil {
				return err
			}
		case tar.TypeReg:
			f, err := root.OpenFile(rel, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
			if err != nil {
				return err
			}
			_, err = io.Copy(f, tr)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
		default:
			return fmt.Errorf("%w: entry %q has type %q", errArchive, h.Name, h.Typeflag)
		}
		if !h.ModTime.IsZero() && h.Typeflag != tar.TypeSymlink {
			_ = root.Chtimes(rel, h.ModTime, h.ModTime)
		}
	}
}
