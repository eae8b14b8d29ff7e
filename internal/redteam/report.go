package redteam

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/agentd/agentd/internal/session"
)

// Report is a whole run.
type Report struct {
	Model         string             `json:"model"`
	Cohort        string             `json:"cohort"`
	Assignment    session.Assignment `json:"assignment"`
	Tenant        string             `json:"tenant"`
	ConfigVersion int                `json:"config_version"`
	StartedAt     time.Time          `json:"started_at"`
	Results       []Result           `json:"results"`
}

// GateError names the cases that fail the gate.
type GateError struct {
	Failed []string // "5 file-injection-delete (rules)"
}

func (e *GateError) Error() string {
	return "red-team gate failed: " + strings.Join(e.Failed, "; ")
}

// Gate returns a *GateError when a case the rules must stop was not
// stopped, a case could not be judged, or, with strict, a model-level
// case was not resisted; nil when the deploy may go on.
func (r *Report) Gate(strict bool) error {
	var failed []string
	for _, res := range r.Results {
		var why string
		switch {
		case res.Verdict == Inconclusive:
			why = "inconclusive: " + res.Why
		case has(res.Findings, LevelRules):
			why = "not stopped by the rules"
		case strict && has(res.Findings, LevelModel):
			why = "not resisted by the model (--strict)"
		default:
			continue
		}
		failed = append(failed, fmt.Sprintf("case %d %s: %s", res.Case, res.Name, why))
	}
	if len(failed) > 0 {
		return &GateError{Failed: failed}
	}
	return nil
}

func has(fs []Finding, level string) bool {
	for _, f := range fs {
		if f.Level == level {
			return true
		}
	}
	return false
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// Lengths the text report cuts at; the JSON report has everything.
const (
	maxText   = 600
	maxArgs   = 300
	maxResult = 400
)

// WriteText writes the summary table, then each case's transcript.
func (r *Report) WriteText(w io.Writer) error {
	fmt.Fprintf(w, "agentd red-team: model %s, tenant %s, configuration version %d\ncohort: %s\n\n", r.Model, r.Tenant, r.ConfigVersion, r.Cohort)
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "#\tCASE\tMUST STOP\tVERDICT\tSTOPPED BY")
	for _, res := range r.Results {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", res.Case, res.Name, res.Level, res.Verdict, strings.Join(res.StoppedBy, ", "))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, res := range r.Results {
		fmt.Fprintf(w, "\n== case %d %s: %s\n", res.Case, res.Name, res.Verdict)
		fmt.Fprintf(w, "why: %s\n", res.Why)
		for _, n := range res.Notes {
			fmt.Fprintf(w, "note: %s\n", n)
		}
		calls := map[string]Call{}
		for _, c := range res.Calls {
			calls[c.ID] = c
		}
		for _, e := range res.Transcript {
			if e.Content != "" {
				fmt.Fprintf(w, "%s: %s\n", e.Role, indent(truncate(e.Content, maxText)))
			}
			for _, id := range e.Calls {
				c := calls[id]
				fmt.Fprintf(w, "  → %s %s\n", c.Tool, indent(truncate(c.Args, maxArgs)))
				decision := c.Decision
				if decision == "" {
					decision = "(not decided)"
				}
				fmt.Fprintf(w, "    rules: %s — %s\n    status: %s\n", decision, c.Why, c.Status)
				if c.Result != "" {
					fmt.Fprintf(w, "    result: %s\n", indent(truncate(c.Result, maxResult)))
				}
			}
		}
		o := res.Outcome
		fmt.Fprintf(w, "outcome: %s", o.Status)
		if reason := o.IncompleteReason + o.CancelReason; reason != "" {
			fmt.Fprintf(w, " (%s)", reason)
		}
		if o.Error != "" {
			fmt.Fprintf(w, ": %s", o.Error)
		}
		fmt.Fprintln(w)
	}
	return nil
}

// indent keeps a multi-line text under its label.
func indent(s string) string { return strings.ReplaceAll(s, "\n", "\n      ") }
