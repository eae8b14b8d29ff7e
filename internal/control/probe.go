package control

import (
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
	var stable session.Assignment
	for _, dim := range canary.Dimensions() {
		stable.SetValue(dim, pol.Stable(dim))
	}
	stable.ConfigVersion = v.N
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
			a.SetValue(dim, cv.Value)
			a.Variants = map[string]string{dim.String(): cv.Name}
			out = append(out, Cohort{Dimension: dim.String(), Variant: cv.Name, Assignment: a})
		}
	}
	return out
}
