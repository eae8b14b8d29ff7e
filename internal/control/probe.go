package control

import (
	"fmt"
	"strings"

	"github.com/agentd/agentd/internal/canary"
	"github.com/agentd/agentd/internal/session"
)

// Cohort is one slice of the canary configuration the continuous probe
// (internal/probe) sends its prompts through: stable, or one live variant
// of one dimension with every other dimension on its stable value.
type Cohort struct {
	// Dimension is "" for stable, else the variant's dimension ("model").
	Dimension string
	// Variant is "stable" for stable (canary.json reserves the name), else
	// the variant's name.
	Variant string
	// Assignment is what a session of the cohort runs with, pinned
	// (session.Pool.CreateAssigned): the values, Variants as the router
	// sets them, and the served version as ConfigVersion.
	Assignment session.Assignment
}

// StableCohort is the Variant of the stable cohort.
const StableCohort = "stable"

// ProbeCohorts returns the cohorts to probe under the served version:
// stable first, then, dimension by dimension in their fixed order, each
// live variant in the order canary.json lists them.
//
// A variant is live when it is not halted and takes users, by percent or
// by its allowlist: an allowlist-only variant (percent 0, "users": [...])
// is the first stage of most canaries, so it is probed too.
func (p *Plane) ProbeCohorts() []Cohort {
	pol, v := p.history.Current()
	stable := pinned(pol, v.N)
	out := []Cohort{{Variant: StableCohort, Assignment: stable}}
	doc := pol.Document()
	for _, dim := range canary.Dimensions() {
		spec := doc.Spec(dim)
		if spec == nil {
			continue
		}
		for _, cv := range spec.Variants {
			if pol.Halted(dim, cv.Name) || (cv.Percent <= 0 && len(cv.Users) == 0) {
				continue
			}
			a := stable
			pinVariant(&a, dim, cv.Name, cv.Value)
			out = append(out, Cohort{Dimension: dim.String(), Variant: cv.Name, Assignment: a})
		}
	}
	return out
}

// Pin returns the assignment of a session pinned to the served version:
// every dimension on its stable value but those variants names, each on
// that variant as the router would give it (the red-team check pins its
// sessions so). A variant that does not exist or is halted is an error: a
// session on it would move to stable at its first turn.
func (p *Plane) Pin(variants map[canary.Dimension]string) (session.Assignment, error) {
	pol, v := p.history.Current()
	a := pinned(pol, v.N)
	for _, dim := range canary.Dimensions() {
		name, ok := variants[dim]
		if !ok {
			continue
		}
		cv, ok := pol.Variant(dim, name)
		if !ok {
			return a, fmt.Errorf("%s has no variant %q in canary.json (version %d); it has: %s", dim, name, v.N, strings.Join(pol.VariantNames(dim), ", "))
		}
		if pol.Halted(dim, name) {
			return a, fmt.Errorf("%s variant %q is halted: a session on it would move to stable at its first turn", dim, name)
		}
		pinVariant(&a, dim, name, cv.Value)
	}
	return a, nil
}

// pinned is the all-stable assignment of version n.
func pinned(pol *canary.Policy, n int) session.Assignment {
	a := session.Assignment{ConfigVersion: n}
	for _, dim := range canary.Dimensions() {
		a.SetValue(dim, pol.Stable(dim))
	}
	return a
}

// pinVariant puts a on variant name (value) of dim.
func pinVariant(a *session.Assignment, dim canary.Dimension, name, value string) {
	a.SetValue(dim, value)
	vs := map[string]string{dim.String(): name}
	for k, v := range a.Variants { // a copy: a may share its map with another assignment
		if k != dim.String() {
			vs[k] = v
		}
	}
	a.Variants = vs
}
