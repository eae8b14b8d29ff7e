package fleet

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"time"

	"github.com/hashicorp/raft"
	"go.uber.org/zap"

	"github.com/agentd/agentd/internal/rollback"
	"github.com/agentd/agentd/internal/session"
)

// entry is one command of the fleet's log: exactly one field is set.
// The JSON form is persisted in the log: fields are added, never renamed.
type entry struct {
	// Version is a configuration version, applied by
	// rollback.History.ApplyCommitted.
	Version *rollback.Version `json:"version,omitempty"`
	// Moved records that sessions are held by another node now.
	Moved *movedEntry `json:"moved,omitempty"`
}

type movedEntry struct {
	IDs []string `json:"ids"`
	To  string   `json:"to"`
}

func (e entry) encode() ([]byte, error) { return json.Marshal(e) }

// fsm applies the fleet's log on this replica.
type fsm struct{ n *Node }

// applyTimeout bounds the local store's write of one entry.
const applyTimeout = 30 * time.Second

// Apply implements raft.FSM. It answers an error (rollback.ErrStale, or
// a bad entry) to the leader that proposed the entry.
func (f *fsm) Apply(l *raft.Log) any {
	if l.Type != raft.LogCommand {
		return nil
	}
	var e entry
	if err := json.Unmarshal(l.Data, &e); err != nil {
		f.n.log.Error("a log entry does not decode; skipped", zap.Uint64("index", l.Index), zap.Error(err))
		return fmt.Errorf("decode log entry %d: %w", l.Index, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), applyTimeout)
	defer cancel()
	switch {
	case e.Version != nil:
		f.n.mu.Lock()
		h := f.n.h
		f.n.mu.Unlock()
		return h.ApplyCommitted(ctx, *e.Version)
	case e.Moved != nil:
		return f.n.applyMoved(ctx, e.Moved.IDs, e.Moved.To, l.Index)
	}
	return nil
}

// applyMoved updates the directory, in memory and in the store. An entry
// older than what a session's record says (a replay) changes nothing.
func (n *Node) applyMoved(ctx context.Context, ids []string, to string, index uint64) error {
	n.mu.Lock()
	for _, id := range ids {
		if old, ok := n.dir[session.ID(id)]; !ok || old.index < index {
			n.dir[session.ID(id)] = dirEntry{to, index}
		}
	}
	n.mu.Unlock()
	if err := n.cfg.Directory.Move(ctx, ids, to, index); err != nil {
		n.log.Error("could not store moved sessions; they are in memory, and stored again when the log is replayed", zap.Error(err))
	}
	n.log.Info("sessions moved", zap.Int("sessions", len(ids)), zap.String("to", to))
	return nil
}

// Snapshot implements raft.FSM: the versions applied so far and the
// directory. Versions are immutable once applied, so Persist reads them
// from the store while later entries apply.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	f.n.mu.Lock()
	defer f.n.mu.Unlock()
	return &snapshot{h: f.n.h, upTo: f.n.h.Applied().N, dir: maps.Clone(f.n.dir)}, nil
}

// snapshotHeader is the first line of a snapshot; a line per version
// follows, oldest first.
type snapshotHeader struct {
	Format    int                      `json:"format"`
	Versions  int                      `json:"versions"`
	Directory map[string]snapshotEntry `json:"directory"`
}

type snapshotEntry struct {
	To    string `json:"to"`
	Index uint64 `json:"index"`
}

type snapshot struct {
	h    *rollback.History
	upTo int
	dir  map[session.ID]dirEntry
}

func (s *snapshot) Persist(sink raft.SnapshotSink) error {
	err := s.write(sink)
	if err != nil {
		_ = sink.Cancel()
		return err
	}
	return sink.Close()
}

func (s *snapshot) write(w io.Writer) error {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	hdr := snapshotHeader{Format: 1, Versions: s.upTo, Directory: map[string]snapshotEntry{}}
	for id, e := range s.dir {
		hdr.Directory[string(id)] = snapshotEntry{e.to, e.index}
	}
	if err := enc.Encode(hdr); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := s.h.Committed(ctx, s.upTo, func(v rollback.Version) error { return enc.Encode(v) }); err != nil {
		return fmt.Errorf("snapshot the versions: %w", err)
	}
	return bw.Flush()
}

func (s *snapshot) Release() {}

// Restore implements raft.FSM: the state becomes the snapshot's. Versions
// this replica stored already as they are in it are kept as they are.
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	dec := json.NewDecoder(bufio.NewReader(rc))
	var hdr snapshotHeader
	if err := dec.Decode(&hdr); err != nil {
		return fmt.Errorf("read the snapshot: %w", err)
	}
	if hdr.Format != 1 {
		return fmt.Errorf("snapshot format %d; this agentd reads 1", hdr.Format)
	}
	n := f.n
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	n.mu.Lock()
	h := n.h
	n.mu.Unlock()
	// The directory first: once the versions are applied (what callers
	// wait on), the moved sessions are known too.
	dir := map[session.ID]dirEntry{}
	byNode := map[snapshotEntry][]string{}
	for id, e := range hdr.Directory {
		dir[session.ID(id)] = dirEntry{e.To, e.Index}
		byNode[e] = append(byNode[e], id)
	}
	n.mu.Lock()
	n.dir = dir
	n.mu.Unlock()
	if err := n.cfg.Directory.Reset(ctx); err != nil {
		return fmt.Errorf("restore the directory: %w", err)
	}
	for _, e := range slices.SortedFunc(maps.Keys(byNode), func(a, b snapshotEntry) int { return cmp.Compare(a.Index, b.Index) }) {
		if err := n.cfg.Directory.Move(ctx, byNode[e], e.To, e.Index); err != nil {
			return fmt.Errorf("restore the directory: %w", err)
		}
	}
	h.BeginRestore()
	for {
		var v rollback.Version
		err := dec.Decode(&v)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("read the snapshot's versions: %w", err)
		}
		if err := h.ApplyCommitted(ctx, v); err != nil {
			return fmt.Errorf("restore version %d: %w", v.N, err)
		}
	}
	n.log.Info("restored the fleet's state from a snapshot", zap.Int("versions", hdr.Versions), zap.Int("moved_sessions", len(dir)))
	return nil
}
