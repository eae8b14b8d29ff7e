package control

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"go.uber.org/zap"
)

// File is a JSON file of the configuration tree outside the versioned
// canary configuration, such as .agentao/alerts.json, .agentao/budgets.json
// or .agentao/probes.json: operators' settings that take effect at the next
// poll and need no version, halt or revert. It is read when added and at
// every poll (and SIGHUP). A file that does not parse keeps the last good
// one serving; it is then a refused part (Refused, agentd_config_refused)
// and retried at every poll, with an error line once per reason. No file
// is the parser's answer to an empty document (its defaults).
type File[T any] struct {
	name  string // relative to the tree: ".agentao/alerts.json"
	path  string
	parse func([]byte) (T, error)
	log   *zap.Logger

	mu      sync.Mutex
	cur     T
	hash    [32]byte
	refused string
}

// watched is what the watcher needs of a File of any type.
type watched interface {
	part() string
	reload()
	refusal() string
}

// AddFile reads the file name (relative to the tree) with parse, which is
// given nil when the file does not exist, and re-reads it at every poll
// from then on. A file that does not parse at start is a *ConfigError, as
// an invalid tree is.
func AddFile[T any](p *Plane, name string, parse func(data []byte) (T, error)) (*File[T], error) {
	f := &File[T]{name: name, path: filepath.Join(p.cfg.ConfigDir, name), parse: parse, log: p.log}
	v, hash, err := f.read()
	if err != nil {
		return nil, &ConfigError{fmt.Errorf("configuration tree %s: %w", p.cfg.ConfigDir, err)}
	}
	f.cur, f.hash = v, hash
	p.filesMu.Lock()
	p.files = append(p.files, f)
	p.filesMu.Unlock()
	return f, nil
}

// Get returns the file's served content.
func (f *File[T]) Get() T {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cur
}

func (f *File[T]) part() string { return filepath.Base(f.name) }

func (f *File[T]) refusal() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.refused
}

func (f *File[T]) read() (T, [32]byte, error) {
	var zero T
	data, err := os.ReadFile(f.path)
	if errors.Is(err, fs.ErrNotExist) {
		data, err = nil, nil
	}
	if err != nil {
		return zero, [32]byte{}, err
	}
	v, err := f.parse(data)
	if err != nil {
		return zero, [32]byte{}, fmt.Errorf("%s:\n%w", f.name, err)
	}
	if data == nil {
		return v, [32]byte{}, nil
	}
	return v, sha256.Sum256(data), nil
}

func (f *File[T]) reload() {
	v, hash, err := f.read()
	f.mu.Lock()
	defer f.mu.Unlock()
	if err != nil {
		if err.Error() != f.refused { // retried at every poll: said once per reason
			f.log.Error(f.part()+" changed but is invalid; the one served before stays", zap.Error(err))
		}
		f.refused = err.Error()
		return
	}
	f.refused = ""
	if hash == f.hash {
		return
	}
	f.cur, f.hash = v, hash
	f.log.Info(f.part() + " changed: served from now on")
}

// Parts lists what Refused may name: Parts() and every added File.
func (p *Plane) Parts() []string {
	out := Parts()
	p.filesMu.Lock()
	defer p.filesMu.Unlock()
	for _, f := range p.files {
		out = append(out, f.part())
	}
	return out
}

// reloadFiles re-reads every added File.
func (p *Plane) reloadFiles() {
	p.filesMu.Lock()
	files := append([]watched(nil), p.files...)
	p.filesMu.Unlock()
	for _, f := range files {
		f.reload()
	}
}

// refusedFiles adds the refused Files to out.
func (p *Plane) refusedFiles(out map[string]string) {
	p.filesMu.Lock()
	defer p.filesMu.Unlock()
	for _, f := range p.files {
		if why := f.refusal(); why != "" {
			out[f.part()] = why
		}
	}
}
