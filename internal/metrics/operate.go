package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// AlertCount is one built-in alert rule and how many of its alerts fire.
type AlertCount struct {
	Name, Severity string
	Firing         int
}

// ProbeState is the canary probe's last result for one prompt and cohort:
// whether the output changed against the previous run of the same prompt
// and cohort, and against stable's output in the same run.
type ProbeState struct {
	Probe, Dimension, Variant          string
	ChangedVsPrevious, ChangedVsStable bool
	LastRun                            time.Time
}

var (
	alertsDesc = prometheus.NewDesc("agentd_alerts_firing",
		"Alerts of a built-in alert rule firing now (GET /v1/admin/alerts lists them), by rule name and severity; 0 when none fires.",
		[]string{"name", "severity"}, nil)
	probeChangedDesc = prometheus.NewDesc("agentd_probe_changed",
		"1 if the canary probe's last output for the prompt and cohort differs from the previous run's (against=\"previous\") or from stable's in the same run (against=\"stable\"), else 0.",
		[]string{"probe", "dimension", "variant", "against"}, nil)
	probeRunDesc = prometheus.NewDesc("agentd_probe_last_run_timestamp_seconds",
		"Unix time of the canary probe's last run of the prompt in the cohort.",
		[]string{"probe", "dimension", "variant"}, nil)
	sessionMaxDesc = prometheus.NewDesc("agentd_session_tokens_max",
		"Tokens used by the session that used the most, among the sessions with an LLM call in the last hour (the stuck-session alert, without a session label).",
		nil, nil)
)

func describeOperate(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{alertsDesc, probeChangedDesc, probeRunDesc, sessionMaxDesc} {
		ch <- d
	}
}

// collectOperate reports the alerts, the probe and the session maximum.
// The sources are other packages' code: a repeated label set would fail
// the whole scrape (the registry refuses duplicates), so repeats are
// merged here instead (firing counts add, changed flags or, last runs max).
func collectOperate(src Sources, ch chan<- prometheus.Metric) {
	if src.SessionTokensMax != nil {
		ch <- prometheus.MustNewConstMetric(sessionMaxDesc, prometheus.GaugeValue, float64(src.SessionTokensMax()))
	}
	if src.Alerts != nil {
		type key struct{ name, severity string }
		firing, order := map[key]int{}, []key{}
		for _, a := range src.Alerts() {
			k := key{a.Name, a.Severity}
			if _, seen := firing[k]; !seen {
				order = append(order, k)
			}
			firing[k] += a.Firing
		}
		for _, k := range order {
			ch <- prometheus.MustNewConstMetric(alertsDesc, prometheus.GaugeValue, float64(firing[k]), k.name, k.severity)
		}
	}
	if src.Probes != nil {
		type key struct{ probe, dimension, variant string }
		merged, order := map[key]ProbeState{}, []key{}
		for _, p := range src.Probes() {
			k := key{p.Probe, p.Dimension, p.Variant}
			m, seen := merged[k]
			if !seen {
				order = append(order, k)
				merged[k] = p
				continue
			}
			m.ChangedVsPrevious = m.ChangedVsPrevious || p.ChangedVsPrevious
			m.ChangedVsStable = m.ChangedVsStable || p.ChangedVsStable
			if p.LastRun.After(m.LastRun) {
				m.LastRun = p.LastRun
			}
			merged[k] = m
		}
		for _, k := range order {
			p := merged[k]
			ch <- prometheus.MustNewConstMetric(probeChangedDesc, prometheus.GaugeValue, b2f(p.ChangedVsPrevious), k.probe, k.dimension, k.variant, "previous")
			ch <- prometheus.MustNewConstMetric(probeChangedDesc, prometheus.GaugeValue, b2f(p.ChangedVsStable), k.probe, k.dimension, k.variant, "stable")
			if !p.LastRun.IsZero() {
				ch <- prometheus.MustNewConstMetric(probeRunDesc, prometheus.GaugeValue, float64(p.LastRun.UnixNano())/1e9, k.probe, k.dimension, k.variant)
			}
		}
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
