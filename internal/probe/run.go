package probe

import (
	"slices"
	"strings"
	"time"

	"github.com/pmezard/go-difflib/difflib"

	"github.com/agentd/agentd/internal/agent"
	"github.com/agentd/agentd/internal/session"
)

// Run is one probe run: every prompt through every cohort.
type Run struct {
	// ID numbers the runs of this replica's store, from 1.
	ID         int       `json:"id"`
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at"`
	// Trigger is "schedule" or "manual" (POST /v1/admin/probes/run).
	Trigger string `json:"trigger"`
	// ConfigVersion is the canary configuration version probed.
	ConfigVersion int `json:"config_version"`
	// Changed counts the results that changed against the previous run or
	// against stable.
	Changed int      `json:"changed"`
	Results []Result `json:"results"`
}

// Result is one prompt through one cohort.
type Result struct {
	Prompt string `json:"prompt"`
	// Dimension is "" for stable; Variant is "stable" or the variant.
	Dimension  string             `json:"dimension,omitempty"`
	Variant    string             `json:"variant"`
	Assignment session.Assignment `json:"assignment"`
	Model      string             `json:"model,omitempty"`
	// Output is the turn's reply, cut at MaxOutput bytes (Truncated).
	Output    string        `json:"output"`
	Truncated bool          `json:"truncated,omitempty"`
	Outcome   agent.Outcome `json:"outcome"`
	// Error is why no turn ran (the session could not be made, the pool
	// refused the turn); the outcome is then status error.
	Error  string `json:"error,omitempty"`
	Millis int64  `json:"ms"`
	// VsPrevious compares with the same prompt and cohort in the previous
	// run; VsStable with stable's output of this run (absent for stable).
	VsPrevious *Diff `json:"vs_previous,omitempty"`
	VsStable   *Diff `json:"vs_stable,omitempty"`
}

// MaxOutput bounds a stored output.
const MaxOutput = 32 << 10

// Key names the result's prompt and cohort: "capital stable",
// "capital model/gpt5-beta".
func (r Result) Key() string { return r.Prompt + " " + r.Cohort() }

// Cohort is "stable" or "dimension/variant".
func (r Result) Cohort() string {
	if r.Dimension == "" {
		return r.Variant
	}
	return r.Dimension + "/" + r.Variant
}

// Changed reports whether either comparison changed.
func (r Result) Changed() bool {
	return (r.VsPrevious != nil && r.VsPrevious.Changed) || (r.VsStable != nil && r.VsStable.Changed)
}

// Diff compares a result with another: the previous run's, or stable's.
type Diff struct {
	// Against is the run compared with (VsPrevious only).
	Against int  `json:"against_run,omitempty"`
	Changed bool `json:"changed"`
	// Outcome is "ok → error/llm_error" when the outcomes differ.
	Outcome string `json:"outcome,omitempty"`
	// Text is the unified diff of the outputs ("" when they are equal).
	Text string `json:"diff,omitempty"`
}

// compare diffs got against was (labelled by the names). Outputs are
// compared line by line with trailing spaces ignored, and the outcome's
// status and incomplete reason must match too.
func compare(was, got Result, against int, wasName, gotName string) *Diff {
	d := &Diff{Against: against}
	if a, b := outcomeLabel(was), outcomeLabel(got); a != b {
		d.Changed, d.Outcome = true, a+" → "+b
	}
	a, b := lines(was.Output), lines(got.Output)
	if !slices.Equal(a, b) {
		d.Changed = true
		text, err := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
			A: a, B: b, FromFile: wasName, ToFile: gotName, Context: 3,
		})
		if err != nil { // only a writer's error, and this one is a strings.Builder
			text = err.Error()
		}
		d.Text = text
	}
	return d
}

func outcomeLabel(r Result) string {
	s := string(r.Outcome.Status)
	if r.Outcome.IncompleteReason != "" {
		s += "/" + r.Outcome.IncompleteReason
	}
	return s
}

// lines splits s into lines, each ending in "\n" (difflib's input),
// without trailing spaces and without the trailing blank lines.
func lines(s string) []string {
	raw := strings.Split(strings.TrimRight(s, " \t\r\n"), "\n")
	out := make([]string, len(raw))
	for i, l := range raw {
		out[i] = strings.TrimRight(l, " \t\r") + "\n"
	}
	return out
}

// State is the latest run's verdict on one prompt and cohort, for
// agentd_probe_changed and agentd_probe_last_run_timestamp_seconds.
type State struct {
	Probe             string // the prompt's name
	Dimension         string // "stable" for stable
	Variant           string // "stable" or the variant
	ChangedVsPrevious bool
	ChangedVsStable   bool
	LastRun           time.Time
}
