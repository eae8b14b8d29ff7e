package canary

import (
	"fmt"
	"strings"
	"sync/atomic"
)

// Pick is what a user gets in one dimension.
type Pick struct {
	Value   string `json:"value"`
	Variant string `json:"variant,omitempty"` // "" means the stable value
}

// Assignment is what a user gets in every dimension, and the version of the
// policy that decided it.
type Assignment struct {
	Picks   [NumDimensions]Pick
	Version int
}

// Get returns the pick of a dimension.
func (a Assignment) Get(dim Dimension) Pick { return a.Picks[dim] }

// Bucket returns the user's bucket in [0, Buckets) for a salt.
func Bucket(salt, tenant, user string) int {
	const offset, prime = 14695981039346656037, 1099511628211
	h := uint64(offset)
	for i := 0; i < len(salt); i++ {
		h = (h ^ uint64(salt[i])) * prime
	}
	h = (h ^ 0) * prime
	for i := 0; i < len(tenant); i++ {
		h = (h ^ uint64(tenant[i])) * prime
	}
	h = (h ^ 0) * prime
	for i := 0; i < len(user); i++ {
		h = (h ^ uint64(user[i])) * prime
	}
	// MurmurHash3 fmix64: FNV's low bits avalanche poorly on similar keys.
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return int(h % Buckets)
}

func (v *cvariant) eligible(tenant string) bool { return v.tenants == nil || v.tenants[tenant] }

func (v *cvariant) listed(tenant, user string) bool {
	return v.users[user] || v.tenantUsers[[2]string{tenant, user}]
}

// pick decides one dimension without allocating.
func (c *compiled) pick(tenant, user string) (Pick, int, string) {
	for i := range c.variants {
		v := &c.variants[i]
		if !v.halted && v.eligible(tenant) && v.listed(tenant, user) {
			return Pick{Value: v.Value, Variant: v.Name}, -1, "allowlist"
		}
	}
	bucket := -1
	for i := range c.variants {
		v := &c.variants[i]
		if v.halted || v.lo == v.hi || !v.eligible(tenant) {
			continue
		}
		if bucket < 0 {
			bucket = Bucket(c.salt, tenant, user)
		}
		if bucket >= v.lo && bucket < v.hi {
			return Pick{Value: v.Value, Variant: v.Name}, bucket, "bucket"
		}
	}
	return Pick{Value: c.stable}, bucket, "stable"
}

// Assign returns the user's assignment under p (Version 0; the Router sets
// the version it serves).
func (p *Policy) Assign(tenant, user string) Assignment {
	var a Assignment
	for d := range a.Picks {
		a.Picks[d], _, _ = p.dims[d].pick(tenant, user)
	}
	return a
}

// Explanation says why a user gets what they get in one dimension.
type Explanation struct {
	Dimension string `json:"dimension"`
	Value     string `json:"value"`
	Variant   string `json:"variant"` // "stable" for the stable value
	Bucket    int    `json:"bucket"`  // -1 when no bucket was needed
	Reason    string `json:"reason"`
}

// Explain returns, per dimension, the value, the variant and the reason.
func (p *Policy) Explain(tenant, user string) []Explanation {
	out := make([]Explanation, 0, NumDimensions)
	for _, dim := range Dimensions() {
		c := &p.dims[dim]
		pk, bucket, how := c.pick(tenant, user)
		if bucket < 0 {
			bucket = Bucket(c.salt, tenant, user)
		}
		e := Explanation{Dimension: dim.String(), Value: pk.Value, Variant: pk.Variant, Bucket: bucket}
		var notes []string
		for i := range c.variants {
			v := &c.variants[i]
			switch {
			case v.halted:
				notes = append(notes, fmt.Sprintf("variant %s is halted", v.Name))
			case !v.eligible(tenant):
				notes = append(notes, fmt.Sprintf("tenant filter: %s is not in %s's tenants %v", tenant, v.Name, v.Tenants))
			}
		}
		switch how {
		case "allowlist":
			e.Reason = fmt.Sprintf("allowlist: %s lists user %s", pk.Variant, user)
		case "bucket":
			v := c.find(pk.Variant)
			e.Reason = fmt.Sprintf("bucket %d is in %s's range [%d, %d) = %.2f%%", bucket, v.Name, v.lo, v.hi, float64(v.hi-v.lo)/100)
		default:
			e.Variant = "stable"
			var ranges []string
			for i := range c.variants {
				v := &c.variants[i]
				if v.lo != v.hi && !v.halted && v.eligible(tenant) {
					ranges = append(ranges, fmt.Sprintf("%s [%d, %d)", v.Name, v.lo, v.hi))
				}
			}
			if len(ranges) == 0 {
				e.Reason = "stable: no variant takes this user by percent"
			} else {
				e.Reason = fmt.Sprintf("stable: bucket %d is outside %s", bucket, strings.Join(ranges, ", "))
			}
		}
		if len(notes) > 0 {
			e.Reason += "; " + strings.Join(notes, "; ")
		}
		out = append(out, e)
	}
	return out
}

func (c *compiled) find(name string) *cvariant {
	for i := range c.variants {
		if c.variants[i].Name == name {
			return &c.variants[i]
		}
	}
	return nil
}

// Router serves the current policy; Swap replaces it atomically, so
// assignments never lock.
type Router struct {
	cur atomic.Pointer[served]
}

type served struct {
	p       *Policy
	version int
}

// NewRouter returns a router serving p as version.
func NewRouter(p *Policy, version int) *Router {
	r := &Router{}
	r.Swap(p, version)
	return r
}

// Swap makes p, as version, the policy new assignments use.
func (r *Router) Swap(p *Policy, version int) { r.cur.Store(&served{p: p, version: version}) }

// Current returns the served policy and its version.
func (r *Router) Current() (*Policy, int) {
	s := r.cur.Load()
	return s.p, s.version
}

// Assign returns a user's assignment under the current policy.
func (r *Router) Assign(tenant, user string) Assignment {
	s := r.cur.Load()
	a := s.p.Assign(tenant, user)
	a.Version = s.version
	return a
}
