package boltdb

import (
	"errors"
	"sync"

	"go.etcd.io/bbolt"
)

// ErrClosed is returned by writes after Close.
var ErrClosed = errors.New("store is closed")

// maxGroup bounds how many writes share one commit.
const maxGroup = 1024

// committer is a group commit: one goroutine applies every write that is
// waiting when it starts a transaction, commits (one fsync for all of
// them) and answers each. An idle store commits a write at once; under
// load, the writes that arrive during one commit share the next. Unlike
// bbolt's Batch it never waits on a timer, so a single save is not delayed.
type committer struct {
	db   *bbolt.DB
	reqs chan *write

	mu     sync.RWMutex // guards closed against sends racing Close
	closed bool
	done   chan struct{}
}

type write struct {
	fn  func(*bbolt.Tx) error
	err chan error
}

func newCommitter(db *bbolt.DB) *committer {
	c := &committer{db: db, reqs: make(chan *write, maxGroup), done: make(chan struct{})}
	go c.loop()
	return c
}

// update runs fn in a write transaction shared with concurrent writes and
// returns once it is committed to disk. fn may run more than once (if
// another write of its group fails, it is retried alone), so it must only
// depend on its transaction.
func (c *committer) update(fn func(*bbolt.Tx) error) error {
	w := &write{fn: fn, err: make(chan error, 1)}
	c.mu.RLock()
	if c.closed {
		c.mu.RUnlock()
		return ErrClosed
	}
	c.reqs <- w
	c.mu.RUnlock()
	return <-w.err
}

func (c *committer) loop() {
	defer close(c.done)
	group := make([]*write, 0, maxGroup)
	for first := range c.reqs {
		group = append(group[:0], first)
	gather:
		for len(group) < maxGroup {
			select {
			case w, ok := <-c.reqs:
				if !ok {
					break gather
				}
				group = append(group, w)
			default:
				break gather
			}
		}
		c.commit(group)
	}
}

// commit applies a group in one transaction. If it fails, each write is
// retried in a transaction of its own so one bad write fails alone.
func (c *committer) commit(group []*write) {
	err := c.db.Update(func(tx *bbolt.Tx) error {
		for _, w := range group {
			if err := w.fn(tx); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil || len(group) == 1 {
		for _, w := range group {
			w.err <- err
		}
		return
	}
	for _, w := range group {
		w.err <- c.db.Update(w.fn)
	}
}

// close stops accepting writes, lets the pending ones commit, and waits.
func (c *committer) close() {
	c.mu.Lock()
	if !c.closed {
		c.closed = true
		close(c.reqs)
	}
	c.mu.Unlock()
	<-c.done
}
