package control

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"

	"go.uber.org/zap"

	"github.com/agentd/agentd/internal/governance"
	"github.com/agentd/agentd/internal/sandbox"
)

// served holds the configuration tree the sessions see (skills,
// instructions, rule versions, sandbox profiles) and swaps in a new one
// when its files change, if it loads and still satisfies the served canary
// configuration. The watcher is its only writer.
type served struct {
	dir  string // the tree, absolute
	self string // this binary, re-executed as the sandbox helper
	log  *zap.Logger
	cur  atomic.Pointer[governance.Tree]
	// print is the fingerprint of the files of cur, or of the last tree
	// refused (the watcher only).
	print string

	mu      sync.Mutex
	refused string // why the tree on disk is not served ("" when it is)
}

// refusal says why the tree on disk is not served, or "".
func (s *served) refusal() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refused
}

// setRefusal records why the tree on disk is refused ("": it is served)
// and says whether that changed.
func (s *served) setRefusal(why string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	changed := why != s.refused
	s.refused = why
	return changed
}

func newServed(ctx context.Context, dir, self string, log *zap.Logger) (*served, error) {
	t, err := governance.Load(dir)
	if err != nil {
		return nil, &ConfigError{fmt.Errorf("configuration tree %s:\n%w", dir, err)}
	}
	s := &served{dir: dir, self: self, log: log.Named("governance"), print: fingerprint(dir)}
	s.adopt(ctx, t)
	return s, nil
}

func (s *served) tree() *governance.Tree { return s.cur.Load() }

// adopt serves t, after the sandbox preflight of its policy.
func (s *served) adopt(ctx context.Context, t *governance.Tree) {
	for _, w := range t.Warnings() {
		s.log.Warn("configuration", zap.String("warning", w))
	}
	pol, err := t.Sandbox()
	if err != nil {
		s.log.Error("sandbox misconfigured: run_shell_command refuses every command until it is fixed", zap.Error(err))
	} else {
		rep := sandbox.Preflight(ctx, s.self, pol)
		if rep.OK() {
			s.log.Info("sandbox preflight", zap.Bool("enabled", rep.Enabled), zap.String("report", rep.String()))
		} else {
			s.log.Error("sandbox preflight failed: run_shell_command refuses commands of the failed profiles", zap.String("report", rep.String()))
		}
	}
	s.cur.Store(t)
}

// reload loads the tree again if its files changed (or force), and at
// every call while the tree on disk is refused: what refused it may have
// been the served canary configuration, which can change without the
// tree's files. The new tree must load and pass check; otherwise the old
// tree keeps serving, and the refusal is logged each time its reason
// changes.
func (s *served) reload(ctx context.Context, force bool, check func(*governance.Tree) error) (bool, error) {
	fp := fingerprint(s.dir)
	if fp == s.print && !force && s.refusal() == "" {
		return false, nil
	}
	s.print = fp
	t, err := governance.Load(s.dir)
	if err == nil && check != nil { // a tree with errors is never served
		err = check(t)
	}
	if err != nil {
		if s.setRefusal(err.Error()) {
			s.log.Error("the configuration tree on disk is invalid; the previous one keeps serving, and it is retried at every poll", zap.Error(err))
		}
		return false, err
	}
	s.adopt(ctx, t)
	if s.setRefusal("") {
		s.log.Info("the configuration tree on disk is valid again")
	}
	s.log.Info("configuration tree reloaded")
	return true, nil
}

// fingerprint hashes the content of the tree's files (not canary.json,
// which the history watches, nor mcp.json, which the MCP servers do), so
// any edit, including a ConfigMap's symlink swap, changes it.
func fingerprint(dir string) string {
	h := sha256.New()
	fsys := os.DirFS(dir)
	var files []string
	for _, root := range []string{"AGENTAO.md", "instructions", "skills", governance.PermissionsDir, governance.SandboxFile} {
		_ = fs.WalkDir(fsys, root, func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				files = append(files, p)
			}
			return nil
		})
	}
	sort.Strings(files)
	for _, f := range files {
		data, _ := fs.ReadFile(fsys, f)
		fmt.Fprintf(h, "%s\x00%d\x00", f, len(data))
		h.Write(data)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// hiddenPaths lists what no command may read although it may lie beneath
// a readable system path (/etc/agentd, say): agentd's data directory, its
// API keys file and its configuration tree (mcp.json's secrets, the canary
// configuration naming tenants and users), each also as its real path when
// a link leads to it.
func hiddenPaths(paths ...string) ([]string, error) {
	var out []string
	for _, p := range paths {
		if p == "" {
			continue
		}
		abs, err := filepath.Abs(p)
		if err != nil {
			return nil, err
		}
		out = append(out, abs)
		if real, err := filepath.EvalSymlinks(abs); err == nil && real != abs {
			out = append(out, real)
		}
	}
	return out, nil
}
