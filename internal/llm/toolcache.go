package llm

import (
	"bytes"
	"hash/maphash"
	"sync"

	"github.com/agentd/agentd/internal/agent"
)

// toolCacheSize bounds the distinct tool sets kept encoded. A deployment
// has a handful (one per skill set, rule version and MCP configuration), so
// the cache is simply emptied when it fills.
const toolCacheSize = 64

// toolCache keeps the encoded "tools" array of the tool sets a Client has
// sent. Every LLM call of every turn sends the same few sets, and encoding
// their JSON schemas again each time (encoding/json validates and compacts
// every json.RawMessage) was the largest part of building a request.
type toolCache struct {
	seed maphash.Seed

	mu      sync.Mutex
	entries map[uint64][]toolEntry
	n       int
}

type toolEntry struct {
	specs []agent.ToolSpec // a private copy, compared on a hash match
	json  []byte
}

func newToolCache() *toolCache {
	return &toolCache{seed: maphash.MakeSeed(), entries: make(map[uint64][]toolEntry)}
}

// encoded returns the "tools" array for specs, or nil when there are none.
// The result is shared and must not be modified.
func (c *toolCache) encoded(specs []agent.ToolSpec) ([]byte, error) {
	if len(specs) == 0 {
		return nil, nil
	}
	key := c.hash(specs)
	c.mu.Lock()
	for _, e := range c.entries[key] {
		if sameTools(e.specs, specs) {
			c.mu.Unlock()
			return e.json, nil
		}
	}
	c.mu.Unlock()

	data, err := encodeTools(specs)
	if err != nil {
		return nil, err
	}
	own := make([]agent.ToolSpec, len(specs))
	for i, s := range specs {
		own[i] = agent.ToolSpec{Name: s.Name, Description: s.Description, Parameters: bytes.Clone(s.Parameters)}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n >= toolCacheSize {
		clear(c.entries)
		c.n = 0
	}
	c.entries[key] = append(c.entries[key], toolEntry{specs: own, json: data})
	c.n++
	return data, nil
}

// hash covers every field that reaches the wire.
func (c *toolCache) hash(specs []agent.ToolSpec) uint64 {
	var h maphash.Hash
	h.SetSeed(c.seed)
	for _, s := range specs {
		h.WriteString(s.Name)
		h.WriteByte(0)
		h.WriteString(s.Description)
		h.WriteByte(0)
		h.Write(s.Parameters)
		h.WriteByte(0)
	}
	return h.Sum64()
}

func sameTools(a, b []agent.ToolSpec) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Name != b[i].Name || a[i].Description != b[i].Description || !bytes.Equal(a[i].Parameters, b[i].Parameters) {
			return false
		}
	}
	return true
}
