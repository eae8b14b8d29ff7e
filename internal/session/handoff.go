package session

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"go.uber.org/zap"

	"github.com/agentd/agentd/internal/agent"
)

// This file is the pool's side of a handoff: a retiring replica's sessions
// move to another replica whole (record, history, workspace) with their ids
// kept (internal/handoff does the moving).

// Errors of a handoff.
var (
	// ErrMoving: the session is being handed to another replica; a client
	// retries shortly and then reaches it there.
	ErrMoving = errors.New("the session is moving to another replica")
	// ErrExists: an imported session is already stored here.
	ErrExists = errors.New("the session is already stored here")
)

// Key names a stored session.
type Key struct {
	Tenant string
	ID     ID
}

// Keyer lists every stored session of every tenant. *boltdb.SessionStore
// implements it.
type Keyer interface {
	Keys(ctx context.Context) ([]Key, error)
}

// Stored lists every session stored here, of every tenant.
func (p *Pool) Stored(ctx context.Context) ([]Key, error) {
	k, ok := p.store.(Keyer)
	if !ok {
		return nil, errors.New("session: the store cannot list its sessions")
	}
	return k.Keys(ctx)
}

// Hold takes a session out of service for a handoff and returns it whole,
// as stored, and its workspace directory. From then on every call on it
// answers ErrMoving, until Unhold. A running turn may finish within grace;
// then it is cancelled (reason "shutdown", as a replica going away does)
// and its outcome saved before Hold returns.
func (p *Pool) Hold(ctx context.Context, tenant string, id ID, grace time.Duration) (*Session, string, error) {
	e, err := p.acquire(ctx, tenant, id)
	if err != nil {
		return nil, "", err
	}
	p.mu.Lock()
	if e.gone {
		p.mu.Unlock()
		p.release(e)
		return nil, "", ErrNotFound
	}
	e.moving = true // new calls and turns get ErrMoving from here on
	p.mu.Unlock()
	// The reference taken by acquire is kept until Unhold: an entry with
	// references is never evicted, so nothing loads the session again from
	// the store behind the hold.
	deadline := time.Now().Add(grace)
	for {
		p.mu.Lock()
		busy, cancel := e.busy, e.cancel
		if busy && cancel != nil && !time.Now().Before(deadline) {
			cancel(agent.Cancelled(agent.ReasonShutdown))
		}
		p.mu.Unlock()
		if !busy {
			break
		}
		select {
		case <-ctx.Done():
			p.Unhold(context.WithoutCancel(ctx), tenant, id, false)
			return nil, "", context.Cause(ctx)
		case <-time.After(20 * time.Millisecond):
		}
	}
	s, err := p.store.Load(ctx, tenant, id)
	if err != nil {
		p.Unhold(context.WithoutCancel(ctx), tenant, id, false)
		return nil, "", err
	}
	return s, p.Dir(tenant, id), nil
}

// Unhold ends a Hold. moved says the session now lives on another replica:
// its record and workspace are removed here. Otherwise it is back in
// service.
func (p *Pool) Unhold(ctx context.Context, tenant string, id ID, moved bool) {
	p.mu.Lock()
	e, ok := p.live[key(tenant, id)]
	if !ok || !e.moving {
		p.mu.Unlock()
		return
	}
	if !moved {
		e.moving = false
		p.mu.Unlock()
		p.release(e)
		return
	}
	e.gone = true // a tombstone until the copy here is gone (see Delete)
	p.mu.Unlock()
	closeAll([]io.Closer{e.takeCloser()})
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.cfg.SaveTimeout)
	defer cancel()
	if err := p.store.Delete(dctx, tenant, id); err != nil && !errors.Is(err, ErrNotFound) {
		p.log.Error("a moved session's copy could not be removed here; the other replica serves it", zap.String("session_id", string(id)), zap.Error(err))
	}
	if err := os.RemoveAll(p.Dir(tenant, id)); err != nil {
		p.log.Warn("remove a moved session's workspace", zap.String("session_id", string(id)), zap.Error(err))
	}
	p.mu.Lock()
	p.removeLocked(e)
	e.refs--
	p.mu.Unlock()
}

// Import stores a session handed over by another replica, as it was there
// (id, history, assignment, turns), with its workspace: staged is a
// directory under StagingDir holding it, renamed into place. A session
// already stored here is ErrExists, unless replace: then the copy here (a
// stray of an earlier handoff that did not finish) is removed first.
func (p *Pool) Import(ctx context.Context, s *Session, staged string, replace bool) error {
	if s == nil || !s.ID.Valid() || !tenantPattern.MatchString(s.Tenant) {
		return fmt.Errorf("%w: not a session", ErrInvalid)
	}
	if p.isClosing() {
		return ErrShuttingDown
	}
	if _, err := p.store.Load(ctx, s.Tenant, s.ID); err == nil {
		if !replace {
			return ErrExists
		}
		if err := p.Delete(ctx, s.Tenant, s.ID); err != nil && !errors.Is(err, ErrNotFound) {
			return fmt.Errorf("remove the stray copy of %s: %w", s.ID, err)
		}
	} else if !errors.Is(err, ErrNotFound) {
		return err
	}
	if s.Messages == nil {
		s.Messages = []agent.Message{}
	}
	dir := p.Dir(s.Tenant, s.ID)
	if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
		return fmt.Errorf("create workspace: %w", err)
	}
	_ = os.RemoveAll(dir) // what a failed import left
	if staged != "" {
		if err := os.Rename(staged, dir); err != nil {
			return fmt.Errorf("move the workspace into place: %w", err)
		}
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create workspace: %w", err)
	}
	if err := p.save(ctx, s, Mark{}); err != nil {
		_ = os.RemoveAll(dir)
		return err
	}
	return nil
}

// StagingDir is where an incoming workspace is unpacked before Import
// renames it into place: on the workspaces' file system, and not a tenant
// name (a tenant starts with a letter or a digit).
func (p *Pool) StagingDir() string { return filepath.Join(p.cfg.Dir, ".incoming") }
