package control

import (
	"context"

	"github.com/agentd/agentd/internal/canary"
	"github.com/agentd/agentd/internal/rollback"
)

// This file is the admin API: reading and changing the canary
// configuration, through the version history, with an actor and a reason
// for every change.

// Canary returns the served canary policy and its version.
func (p *Plane) Canary() (*canary.Policy, rollback.Version) { return p.history.Current() }

// CanaryStatus says whether the served configuration differs from
// canary.json, and why the file does not serve if it does not.
func (p *Plane) CanaryStatus() rollback.Status { return p.history.Status() }

// Parts of the configuration that can be refused (Refused).
const (
	PartTree   = "tree"        // skills, instructions, rule versions, sandbox.json
	PartCanary = "canary.json" // the canary configuration file
	PartMCP    = "mcp.json"
	// PartVersion is a version the fleet committed that does not validate
	// against this replica's tree.
	PartVersion = "version"
)

// Parts lists what Refused may name.
func Parts() []string { return []string{PartTree, PartCanary, PartMCP, PartVersion} }

// Refused names each part of the configuration on disk that is not served
// because it is invalid, with why; the part served before keeps serving,
// and each is retried at every poll. Empty when everything on disk is
// served.
func (p *Plane) Refused() map[string]string {
	out := map[string]string{}
	if why := p.tree.refusal(); why != "" {
		out[PartTree] = why
	}
	st := p.history.Status()
	if st.FileError != "" {
		out[PartCanary] = st.FileError
	}
	if st.Unserved != "" {
		out[PartVersion] = st.Unserved
	}
	if why := p.mcp.refusal(); why != "" {
		out[PartMCP] = why
	}
	p.refusedFiles(out)
	return out
}

// ApplyCanary validates doc (a canary.json document) and serves it as a
// new version if ifMatch is the current version (rollback.ErrConflict
// otherwise).
func (p *Plane) ApplyCanary(ctx context.Context, doc []byte, ifMatch int, actor, reason string) (rollback.Version, error) {
	return p.history.Apply(ctx, doc, ifMatch, actor, reason)
}

// Versions lists the history, newest first, below before (0: from the
// newest), at most limit.
func (p *Plane) Versions(ctx context.Context, before, limit int) ([]rollback.Version, error) {
	return p.history.List(ctx, before, limit)
}

// Version returns version n (rollback.ErrNotFound if there is none).
func (p *Plane) Version(ctx context.Context, n int) (rollback.Version, error) {
	return p.history.Get(ctx, n)
}

// Halt takes a variant out of service as a new version; changed is false
// when it was halted already.
func (p *Plane) Halt(ctx context.Context, dim canary.Dimension, variant, actor, reason string) (v rollback.Version, changed bool, err error) {
	return p.history.Halt(ctx, dim, variant, actor, reason, nil)
}

// Revert serves version n's configuration again, as a new version.
func (p *Plane) Revert(ctx context.Context, n int, actor, reason string) (rollback.Version, error) {
	return p.history.Revert(ctx, n, actor, reason)
}

// GuardWindows returns what the guard measures now, per variant and
// control.
func (p *Plane) GuardWindows() []rollback.Stats { return p.guard.Stats() }

// GuardReported returns the ceiling breaches the guard reports instead of
// halting, because stable is over the same ceiling (an outage both share).
func (p *Plane) GuardReported() []rollback.Reported { return p.guard.Reported() }
