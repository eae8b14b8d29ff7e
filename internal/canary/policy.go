// Package canary is agentd's cohort router: per user, it picks a model, a
// skill set, a permission-rule version, a sandbox profile and an
// instructions file, dimension by dimension, from a Policy that operators
// change at run time.
//
// # Assignment
//
// For each dimension a user is bucketed by
//
//	bucket = fmix64(fnv1a64(salt + "\x00" + tenant + "\x00" + user)) mod 10000
//
// (FNV-1a 64 over the bytes, then MurmurHash3's 64-bit finaliser for
// avalanche; salt defaults to the dimension's name). The bucket depends on
// nothing else: not on the replica, the process, the time or the other
// dimensions, so every replica and every restart agrees. Reusing one salt in
// several dimensions makes the same users the canary of each of them.
//
// A user gets, in this order: the first variant whose allowlist names them
// (entries are "user" or "tenant/user"); else a variant whose bucket range
// holds their bucket; else the stable value. A variant with a tenants list
// only ever takes users of those tenants, allowlisted ones included.
//
// Percents have two decimals (a basis point is one bucket). At most two
// variants per dimension may have a percent: the first grows up from bucket
// 0, the second down from bucket 9999, so raising or lowering one variant's
// percent only moves users between it and stable, never between variants,
// and a user already in a variant stays in it while its percent grows. (With
// three growing ranges on one line this cannot be guaranteed; allowlist-only
// variants are not limited.)
//
// Assignments are sticky: the session layer computes one when a session is
// created and keeps it, so a later policy never changes a live conversation;
// only halting a variant does (see Policy.Halted), at its next turn.
package canary

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
)

// Dimension is one axis of the router. Append only: names are stored.
type Dimension int

// Dimensions, in their fixed order.
const (
	Model Dimension = iota
	Skills
	Rules
	Sandbox
	Instructions
	// NumDimensions is how many dimensions there are: the length of
	// ByDimension.
	NumDimensions
)

// ByDimension holds one string per dimension, indexed by Dimension: a
// session's values, or the variant it runs per dimension ("" for stable).
// It is the one place the number of dimensions is spelled.
type ByDimension [NumDimensions]string

var dimensionNames = ByDimension{"model", "skills", "rules", "sandbox", "instructions"}

func (d Dimension) String() string {
	if d >= 0 && d < NumDimensions {
		return dimensionNames[d]
	}
	return fmt.Sprintf("dimension(%d)", int(d))
}

// Dimensions returns every dimension in order.
func Dimensions() []Dimension { return []Dimension{Model, Skills, Rules, Sandbox, Instructions} }

// ParseDimension returns the dimension named s.
func ParseDimension(s string) (Dimension, error) {
	for d, n := range dimensionNames {
		if n == s {
			return Dimension(d), nil
		}
	}
	return 0, fmt.Errorf("unknown dimension %q; want one of %s", s, strings.Join(dimensionNames[:], ", "))
}

// Buckets is the size of the bucket space: a bucket is 0.01 %.
const Buckets = 10_000

// Variant is one alternative to a dimension's stable value.
type Variant struct {
	Name    string   `json:"name"`
	Value   string   `json:"value"`
	Percent float64  `json:"percent"`
	Users   []string `json:"users,omitempty"`
	Tenants []string `json:"tenants,omitempty"`
}

// Spec is the configuration of one dimension.
type Spec struct {
	Stable   string    `json:"stable"`
	Salt     string    `json:"salt,omitempty"`
	Variants []Variant `json:"variants,omitempty"`
	// OnRollback says what a halt or a revert does to live sessions that
	// hold a value it took out of service: OnRollbackMigrate (the default)
	// moves them at their next turn, OnRollbackFinish lets them keep it
	// until they end. A value that no longer exists moves either way.
	OnRollback string `json:"on_rollback,omitempty"`
}

// What a rollback does to live sessions (Spec.OnRollback).
const (
	OnRollbackMigrate = "migrate"
	OnRollbackFinish  = "finish"
)

// Guard configures the rollback guard (internal/rollback). Zero fields take
// the defaults of DefaultGuard.
//
// Tool failures and LLM 5xx are judged two ways. Against the control: a
// variant is halted when its rate is more than Ratio times its stable
// control's over the same stretch of turns and more than MinDelta (a
// fraction of calls, 0.05 = 5 points) above it; the minimum keeps tiny rates
// from halting (1% against 0.2% is 5× but less than a point). Against the
// ceiling (ToolFailureRate, LLM5xxRate): a variant over it is halted unless
// its control is over it too, which is an outage of a shared dependency,
// not the variant's fault: that is reported, not halted.
type Guard struct {
	MinSamples int `json:"min_samples,omitempty"`
	// ToolFailureRate and LLM5xxRate are the absolute ceilings.
	ToolFailureRate float64 `json:"tool_failure_rate,omitempty"`
	LLM5xxRate      float64 `json:"llm_5xx_rate,omitempty"`
	// The margins against the control.
	ToolFailureRatio    float64 `json:"tool_failure_ratio,omitempty"`
	ToolFailureMinDelta float64 `json:"tool_failure_min_delta,omitempty"`
	LLM5xxRatio         float64 `json:"llm_5xx_ratio,omitempty"`
	LLM5xxMinDelta      float64 `json:"llm_5xx_min_delta,omitempty"`
	TokenRatio          float64 `json:"token_ratio,omitempty"`
	// Window is how many recent turns of a variant (and of its control) are
	// compared.
	Window int `json:"window,omitempty"`
	// Disabled turns automatic halting off; breaches are still logged.
	Disabled bool `json:"disabled,omitempty"`
}

// DefaultGuard is the seed's thresholds.
func DefaultGuard() Guard {
	return Guard{MinSamples: 50, ToolFailureRate: 0.10, LLM5xxRate: 0.05, TokenRatio: 1.5, Window: 200,
		ToolFailureRatio: 2, ToolFailureMinDelta: 0.05, LLM5xxRatio: 2, LLM5xxMinDelta: 0.02}
}

// Document is canary.json as written by operators.
type Document struct {
	Models       []string `json:"models,omitempty"`
	Model        *Spec    `json:"model,omitempty"`
	Skills       *Spec    `json:"skills,omitempty"`
	Rules        *Spec    `json:"rules,omitempty"`
	Sandbox      *Spec    `json:"sandbox,omitempty"`
	Instructions *Spec    `json:"instructions,omitempty"`
	Guard        *Guard   `json:"guard,omitempty"`
	// Halted lists variants taken out of service ("dimension/variant"),
	// normally written by a rollback rather than by hand. A halted
	// variant's users get the stable value, and sessions pinned to it move
	// to stable at their next turn.
	Halted []string `json:"halted,omitempty"`
}

// Spec returns the configuration of one dimension (nil if it is absent).
func (d *Document) Spec(dim Dimension) *Spec {
	return [NumDimensions]*Spec{d.Model, d.Skills, d.Rules, d.Sandbox, d.Instructions}[dim]
}

func (d *Document) setSpec(dim Dimension, s *Spec) {
	switch dim {
	case Model:
		d.Model = s
	case Skills:
		d.Skills = s
	case Rules:
		d.Rules = s
	case Sandbox:
		d.Sandbox = s
	case Instructions:
		d.Instructions = s
	}
}

// Known tells what values exist for validation: Exists(dim, value) is
// consulted for every dimension but the model, which the document's models
// catalog decides (Models when the document has none). Defaults fill
// dimensions the document omits.
type Known struct {
	Defaults ByDimension
	Models   []string
	Exists   func(dim Dimension, value string) error
}

// Policy is a validated, compiled Document. It is immutable.
type Policy struct {
	doc    Document
	models []string
	dims   [NumDimensions]compiled
	guard  Guard
	halted map[string]bool // "dim/variant"
}

type compiled struct {
	stable   string
	salt     string
	variants []cvariant
	finish   bool // on_rollback "finish"
}

type cvariant struct {
	Variant
	index       int
	lo, hi      int // bucket range [lo, hi); empty when lo == hi
	tenants     map[string]bool
	users       map[string]bool    // "user" entries: that user in any eligible tenant
	tenantUsers map[[2]string]bool // "tenant/user" entries
	halted      bool
}

// Parse decodes and validates canary.json. Every problem is reported,
// naming its field (e.g. "model.variants[1].percent").
func Parse(data []byte, known Known) (*Policy, error) {
	var doc Document
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("canary.json: %w", jsonError(err))
	}
	if dec.More() {
		return nil, errors.New("canary.json: data after the JSON object")
	}
	return Compile(doc, known)
}

func jsonError(err error) error {
	if s := err.Error(); strings.HasPrefix(s, "json: unknown field ") {
		return fmt.Errorf("unknown field %s (dimensions are %s; other keys: models, guard, halted)",
			strings.TrimPrefix(s, "json: unknown field "), strings.Join(dimensionNames[:], ", "))
	}
	return err
}

// Compile validates doc and builds its Policy.
func Compile(doc Document, known Known) (*Policy, error) {
	p := &Policy{doc: doc, halted: map[string]bool{}}
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	p.models = slices.Clone(doc.Models)
	seenModel := map[string]bool{}
	for i, m := range p.models {
		if strings.TrimSpace(m) == "" {
			bad(fmt.Sprintf("models[%d]", i), "empty model id")
		}
		if seenModel[m] {
			bad(fmt.Sprintf("models[%d]", i), "duplicate model %q", m)
		}
		seenModel[m] = true
	}
	if len(p.models) == 0 {
		p.models = slices.Clone(known.Models)
	}
	if len(p.models) == 0 && known.Defaults[Model] != "" {
		p.models = []string{known.Defaults[Model]}
	}
	exists := func(dim Dimension, v string) error {
		if dim == Model {
			if !slices.Contains(p.models, v) {
				return fmt.Errorf("model %q is not in the models catalog %v", v, p.models)
			}
			return nil
		}
		if known.Exists == nil {
			return nil
		}
		return known.Exists(dim, v)
	}
	for _, dim := range Dimensions() {
		spec := doc.Spec(dim)
		name := dim.String()
		c := compiled{salt: name}
		if spec == nil {
			c.stable = known.Defaults[dim]
			if c.stable == "" {
				bad(name, "missing, and there is no default")
			} else if err := exists(dim, c.stable); err != nil {
				bad(name, "default %v", err)
			}
			p.dims[dim] = c
			continue
		}
		c.stable = spec.Stable
		if spec.Salt != "" {
			c.salt = spec.Salt
		}
		switch spec.OnRollback {
		case "", OnRollbackMigrate:
		case OnRollbackFinish:
			c.finish = true
		default:
			bad(name+".on_rollback", "%q: want %q (the default) or %q", spec.OnRollback, OnRollbackMigrate, OnRollbackFinish)
		}
		if c.stable == "" {
			c.stable = known.Defaults[dim]
		}
		if c.stable == "" {
			bad(name+".stable", "required")
		} else if err := exists(dim, c.stable); err != nil {
			bad(name+".stable", "%v", err)
		}
		names := map[string]bool{}
		var growing []int
		total := 0
		for i, v := range spec.Variants {
			field := fmt.Sprintf("%s.variants[%d]", name, i)
			cv := cvariant{Variant: v, index: i}
			switch {
			case v.Name == "":
				bad(field+".name", "required")
			case !validName(v.Name):
				bad(field+".name", "%q: use letters, digits, '.', '_' or '-'", v.Name)
			case v.Name == "stable":
				bad(field+".name", `"stable" names the stable value in logs, metrics and explanations; choose another name`)
			case names[v.Name]:
				bad(field+".name", "duplicate variant name %q", v.Name)
			}
			names[v.Name] = true
			if v.Value == "" {
				bad(field+".value", "required")
			} else if err := exists(dim, v.Value); err != nil {
				bad(field+".value", "%v", err)
			}
			bp, ok := basisPoints(v.Percent)
			if !ok {
				bad(field+".percent", "%v: want 0 to 100 with at most two decimals", v.Percent)
			}
			total += bp
			if bp > 0 {
				growing = append(growing, i)
			}
			for j, u := range v.Users {
				if strings.TrimSpace(u) == "" {
					bad(fmt.Sprintf("%s.users[%d]", field, j), "empty user")
				}
			}
			if len(v.Tenants) > 0 {
				cv.tenants = map[string]bool{}
				for j, t := range v.Tenants {
					if strings.TrimSpace(t) == "" {
						bad(fmt.Sprintf("%s.tenants[%d]", field, j), "empty tenant")
					}
					cv.tenants[t] = true
				}
			}
			for _, u := range v.Users {
				if t, name, ok := strings.Cut(u, "/"); ok {
					if cv.tenantUsers == nil {
						cv.tenantUsers = map[[2]string]bool{}
					}
					cv.tenantUsers[[2]string{t, name}] = true
				} else {
					if cv.users == nil {
						cv.users = map[string]bool{}
					}
					cv.users[u] = true
				}
			}
			cv.lo, cv.hi = 0, bp // placed below
			c.variants = append(c.variants, cv)
		}
		if total > Buckets {
			bad(name+".variants", "percents sum to %.2f, over 100", float64(total)/100)
		}
		if len(growing) > 2 {
			bad(name+".variants", "%d variants have a percent; at most 2 may (the first grows from bucket 0, the second from bucket %d, so no change of one percent moves users between variants); use users lists for the others", len(growing), Buckets-1)
		}
		if len(growing) >= 1 {
			c.variants[growing[0]].lo = 0
		}
		if len(growing) == 2 {
			v := &c.variants[growing[1]]
			v.lo, v.hi = Buckets-v.hi, Buckets
		}
		for i := range c.variants {
			if !slices.Contains(growing, i) {
				c.variants[i].lo, c.variants[i].hi = 0, 0
			}
		}
		p.dims[dim] = c
	}
	for i, h := range doc.Halted {
		dimName, variant, ok := strings.Cut(h, "/")
		dim, err := ParseDimension(dimName)
		if !ok || err != nil {
			bad(fmt.Sprintf("halted[%d]", i), "%q: want \"dimension/variant\"", h)
			continue
		}
		found := false
		for j := range p.dims[dim].variants {
			if p.dims[dim].variants[j].Name == variant {
				p.dims[dim].variants[j].halted = true
				found = true
			}
		}
		if !found {
			bad(fmt.Sprintf("halted[%d]", i), "no variant %q in %s", variant, dim)
		}
		p.halted[h] = true
	}
	p.guard = DefaultGuard()
	if g := doc.Guard; g != nil {
		if g.MinSamples < 0 {
			bad("guard.min_samples", "must not be negative")
		} else if g.MinSamples > 0 {
			p.guard.MinSamples = g.MinSamples
		}
		for _, f := range []struct {
			name string
			v    float64
			dst  *float64
			max  float64
		}{
			{"guard.tool_failure_rate", g.ToolFailureRate, &p.guard.ToolFailureRate, 1},
			{"guard.llm_5xx_rate", g.LLM5xxRate, &p.guard.LLM5xxRate, 1},
			{"guard.token_ratio", g.TokenRatio, &p.guard.TokenRatio, math.MaxFloat64},
			{"guard.tool_failure_min_delta", g.ToolFailureMinDelta, &p.guard.ToolFailureMinDelta, 1},
			{"guard.llm_5xx_min_delta", g.LLM5xxMinDelta, &p.guard.LLM5xxMinDelta, 1},
		} {
			switch {
			case f.v < 0 || f.v > f.max:
				bad(f.name, "%v is out of range", f.v)
			case f.v > 0:
				*f.dst = f.v
			}
		}
		// A ratio below 1 would halt a variant that does better than
		// stable.
		for _, f := range []struct {
			name string
			v    float64
			dst  *float64
		}{
			{"guard.tool_failure_ratio", g.ToolFailureRatio, &p.guard.ToolFailureRatio},
			{"guard.llm_5xx_ratio", g.LLM5xxRatio, &p.guard.LLM5xxRatio},
		} {
			switch {
			case f.v < 0 || f.v > 0 && f.v < 1:
				bad(f.name, "must be at least 1 (how many times stable's rate a variant may reach), not %v", f.v)
			case f.v > 0:
				*f.dst = f.v
			}
		}
		if g.Window < 0 {
			bad("guard.window", "must not be negative")
		} else if g.Window > 0 {
			p.guard.Window = g.Window
		}
		if p.guard.Window < p.guard.MinSamples {
			bad("guard.window", "%d is smaller than min_samples %d", p.guard.Window, p.guard.MinSamples)
		}
		p.guard.Disabled = g.Disabled
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return p, nil
}

func validName(s string) bool {
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return len(s) <= 64
}

// basisPoints converts a percent with at most two decimals to buckets.
func basisPoints(p float64) (int, bool) {
	if math.IsNaN(p) || p < 0 || p > 100 {
		return 0, false
	}
	bp := math.Round(p * 100)
	if math.Abs(bp-p*100) > 1e-6 {
		return 0, false
	}
	return int(bp), true
}

// Document returns the policy's source document.
func (p *Policy) Document() Document { return p.doc }

// Models returns the model catalog.
func (p *Policy) Models() []string { return slices.Clone(p.models) }

// Guard returns the guard settings, defaults applied.
func (p *Policy) Guard() Guard { return p.guard }

// Stable returns a dimension's stable value.
func (p *Policy) Stable(dim Dimension) string { return p.dims[dim].stable }

// Finish reports whether a dimension's live sessions keep a value a
// rollback took out of service until they end (on_rollback "finish").
func (p *Policy) Finish(dim Dimension) bool { return p.dims[dim].finish }

// HasModel reports whether m is in the model catalog.
func (p *Policy) HasModel(m string) bool { return slices.Contains(p.models, m) }

// Halted reports whether a variant is halted.
func (p *Policy) Halted(dim Dimension, variant string) bool {
	return p.halted[dim.String()+"/"+variant]
}

// Variant returns a dimension's variant by name.
func (p *Policy) Variant(dim Dimension, name string) (Variant, bool) {
	for _, v := range p.dims[dim].variants {
		if v.Name == name {
			return v.Variant, true
		}
	}
	return Variant{}, false
}

// VariantNames returns the live (not halted) variants of a dimension.
func (p *Policy) VariantNames(dim Dimension) []string {
	var out []string
	for _, v := range p.dims[dim].variants {
		if !v.halted {
			out = append(out, v.Name)
		}
	}
	return out
}

// JSON returns the document as indented JSON, the form versions store.
func (p *Policy) JSON() []byte {
	b, _ := json.MarshalIndent(p.doc, "", "  ")
	return append(b, '\n')
}
