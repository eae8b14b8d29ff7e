package httpapi_test

import (
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// BenchmarkDirectTurn and BenchmarkForwardedTurn run the same JSON turn
// (the fake LLM on loopback, an fsynced save) on the session's owner and
// through another replica that forwards it; BenchmarkForwardingOverhead
// alternates the two on one fleet, so that the machine's drift weighs on
// both alike, and reports the difference of their medians: what the
// forwarding hop adds to a turn.
func BenchmarkDirectTurn(b *testing.B) {
	ds := benchTurns(b, "a")
	b.ReportMetric(ms(p50(ds["a"])), "p50-ms")
	b.ReportMetric(ms(p99(ds["a"])), "p99-ms")
}

func BenchmarkForwardedTurn(b *testing.B) {
	ds := benchTurns(b, "b")
	b.ReportMetric(ms(p50(ds["b"])), "p50-ms")
	b.ReportMetric(ms(p99(ds["b"])), "p99-ms")
}

func BenchmarkForwardingOverhead(b *testing.B) {
	ds := benchTurns(b, "a", "b")
	b.ReportMetric(ms(p50(ds["a"])), "direct-p50-ms")
	b.ReportMetric(ms(p50(ds["b"])), "forwarded-p50-ms")
	b.ReportMetric(ms(p50(ds["b"])-p50(ds["a"])), "added-p50-ms")
}

// benchTurns runs b.N turns on a session of node a, sent to the nodes
// named in turn, and returns each node's per-turn durations.
func benchTurns(b *testing.B, through ...string) map[string][]time.Duration {
	f := newTestFleet(b, "a", "b")
	id := f.create("a", acmeKey)
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	defer hc.CloseIdleConnections()
	call := func(node, path, body string) {
		req, _ := http.NewRequest("POST", f.nodes[node].url+"/v1/sessions/"+id+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+acmeKey)
		resp, err := hc.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("POST %s on %s = %d %s", path, node, resp.StatusCode, data)
		}
	}
	for _, node := range through {
		call(node, "/messages", `{"content":"warm up"}`) // connections open, session live
	}
	ds := map[string][]time.Duration{}
	b.ResetTimer()
	for i := range b.N {
		if i%50 == 49 { // keep the history conversation-sized
			b.StopTimer()
			call("a", "/clear", "")
			b.StartTimer()
		}
		node := through[i%len(through)]
		began := time.Now()
		call(node, "/messages", `{"content":"hello"}`)
		ds[node] = append(ds[node], time.Since(began))
	}
	b.StopTimer()
	return ds
}

func p50(ds []time.Duration) time.Duration { return quantile(ds, 50) }
func p99(ds []time.Duration) time.Duration { return quantile(ds, 99) }

func quantile(ds []time.Duration, q int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	return ds[len(ds)*q/100]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
