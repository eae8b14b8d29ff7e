package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	openai "github.com/sashabaranov/go-openai"
	"go.uber.org/zap"

	"github.com/agentd/agentd/internal/agent"
	"github.com/agentd/agentd/internal/llm/llmtest"
	"github.com/agentd/agentd/internal/prompt"
	"github.com/agentd/agentd/internal/session"
	"github.com/agentd/agentd/internal/tenant"
	"github.com/agentd/agentd/internal/tools"
)

const benchKey = "bench-key-0123456789"

// benchApp wires the real agentd (store with fsync, pool, HTTP API, LLM
// client) against llmURL.
func benchApp(b *testing.B, llmURL string, edit func(*Config)) *app {
	b.Helper()
	cfg := Config{
		Addr: "127.0.0.1:0", DataDir: b.TempDir(), OpenAIBaseURL: llmURL, Model: "bench-model", Models: []string{"bench-model"},
		LLMMaxAttempts: 1, ShutdownTimeout: 30 * time.Second, TurnTimeout: 10 * time.Minute, MaxIterations: 100,
		SessionTTL: 30 * time.Minute, MaxLiveSessions: 500, MaxBodyBytes: 1 << 20, ShellTimeout: 2 * time.Minute,
		ConfigDir: "../..", ConfigPoll: time.Hour,
	}
	if edit != nil {
		edit(&cfg)
	}
	keys, err := tenant.Parse(benchKey + "=bench")
	if err != nil {
		b.Fatal(err)
	}
	a, err := newApp(context.Background(), cfg, keys, zap.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = a.pool.Close(); _ = a.close() })
	return a
}

func fakeLLM(b *testing.B, reply llmtest.Reply) *httptest.Server {
	fake := llmtest.New()
	fake.KeepRequests(false)
	fake.SetResponder(func(llmtest.Request) llmtest.Reply { return reply })
	srv := httptest.NewServer(fake.Handler())
	b.Cleanup(func() { srv.Close(); fake.Close() })
	return srv
}

func p50(ds []time.Duration) time.Duration {
	slices.Sort(ds)
	return ds[len(ds)/2]
}

// BenchmarkTurnOverhead measures what agentd adds to a model call: each
// iteration makes one direct go-openai streamed call to the fake LLM and one
// full HTTP turn through agentd (auth, JSON, pool, agent loop, LLM client,
// an fsynced save) that makes the same call, side by side, and reports both
// medians and their difference.
func BenchmarkTurnOverhead(b *testing.B) {
	llm := fakeLLM(b, llmtest.Reply{Text: "ok, done.", ChunkSize: 64, Usage: &llmtest.Usage{PromptTokens: 10, CompletionTokens: 3}})
	a := benchApp(b, llm.URL+"/v1", nil)
	api := httptest.NewServer(a.api)
	defer api.Close()

	// The direct call sends what agentd's turn sends: the system prompt, a
	// user message and the built-in tools' schemas.
	set, err := tools.New(b.TempDir(), tools.Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer set.Close()
	var specs []openai.Tool
	for _, t := range set.Tools() {
		s := t.Spec()
		specs = append(specs, openai.Tool{Type: openai.ToolTypeFunction, Function: &openai.FunctionDefinition{
			Name: s.Name, Description: s.Description, Parameters: s.Parameters,
		}})
	}
	ocfg := openai.DefaultConfig("sk-bench")
	ocfg.BaseURL = llm.URL + "/v1"
	direct := openai.NewClientWithConfig(ocfg)
	directCall := func() {
		stream, err := direct.CreateChatCompletionStream(context.Background(), openai.ChatCompletionRequest{
			Model: "bench-model", Stream: true, StreamOptions: &openai.StreamOptions{IncludeUsage: true}, Tools: specs,
			Messages: []openai.ChatCompletionMessage{{Role: "system", Content: prompt.Base}, {Role: "user", Content: agent.Reminder(time.Now()) + "hello"}},
		})
		if err != nil {
			b.Fatal(err)
		}
		for {
			if _, err := stream.Recv(); err == io.EOF {
				break
			} else if err != nil {
				b.Fatal(err)
			}
		}
		stream.Close()
	}
	hc := &http.Client{}
	call := func(method, path, body string) string {
		req, _ := http.NewRequest(method, api.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+benchKey)
		req.Header.Set("X-Agentd-User", "bench")
		resp, err := hc.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode >= 300 {
			b.Fatalf("%s %s = %d %s", method, path, resp.StatusCode, data)
		}
		return string(data)
	}
	created := call("POST", "/v1/sessions", "")
	id := created[strings.Index(created, `"id":"`)+6:]
	id = id[:strings.Index(id, `"`)]

	var directs, turns []time.Duration
	b.ResetTimer()
	for i := range b.N {
		if i%50 == 0 { // keep the history short, like the direct call's
			b.StopTimer()
			call("POST", "/v1/sessions/"+id+"/clear", "")
			b.StartTimer()
		}
		t0 := time.Now()
		directCall()
		t1 := time.Now()
		call("POST", "/v1/sessions/"+id+"/messages", `{"content":"hello"}`)
		t2 := time.Now()
		directs = append(directs, t1.Sub(t0))
		turns = append(turns, t2.Sub(t1))
	}
	b.StopTimer()
	d, t := p50(directs), p50(turns)
	b.ReportMetric(float64(d.Microseconds()), "direct-p50-µs")
	b.ReportMetric(float64(t.Microseconds()), "agentd-p50-µs")
	b.ReportMetric(float64((t - d).Microseconds()), "added-p50-µs")
}

// BenchmarkShutdown1000 measures a SIGTERM with 1,000 sessions mid-turn
// (each streaming from the fake LLM): from the start of the shutdown to
// every turn cancelled and its history saved (fsync on).
func BenchmarkShutdown1000(b *testing.B) {
	const n = 1000
	llm := fakeLLM(b, llmtest.Reply{Text: "partial answer", HangAfterChunks: 2})
	var total time.Duration
	for range b.N {
		b.StopTimer()
		a := benchApp(b, llm.URL+"/v1", func(c *Config) { c.MaxLiveSessions = 2 * n })
		ids := make([]session.ID, n)
		for i := range ids {
			s, err := a.pool.Create(context.Background(), "bench", fmt.Sprint("u", i), "")
			if err != nil {
				b.Fatal(err)
			}
			ids[i] = s.ID
		}
		var wg sync.WaitGroup
		streaming := make(chan struct{}, n)
		for _, id := range ids {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var once sync.Once
				res, err := a.pool.Turn(context.Background(), "bench", id, session.TurnInput{Content: "work", Emit: func(e agent.Event) {
					if e.Type == agent.EventLLMText {
						once.Do(func() { streaming <- struct{}{} })
					}
				}})
				if err != nil || res.Outcome.CancelReason != agent.ReasonShutdown {
					b.Errorf("turn = %+v, %v; want cancelled by shutdown", res.Outcome, err)
				}
			}()
		}
		for range n {
			<-streaming
		}
		b.StartTimer()
		began := time.Now()
		if err := a.shutdown(context.Background()); err != nil {
			b.Fatal(err)
		}
		total += time.Since(began)
		b.StopTimer()
		wg.Wait()
		sums, _, err := a.db.Sessions().List(context.Background(), "bench", session.ListQuery{Limit: n})
		if err != nil || len(sums) != n {
			b.Fatalf("listed %d sessions, %v", len(sums), err)
		}
		for _, s := range sums {
			if s.TurnCount != 1 || s.LastOutcome.Status != agent.StatusCancelled {
				b.Fatalf("session %s not saved as cancelled: %+v", s.ID, s)
			}
		}
		_ = a.close()
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms-to-exit")
}

// BenchmarkIdleSessionMemory measures the heap held per idle pooled
// session that has had one short turn (its tools built, history in memory).
func BenchmarkIdleSessionMemory(b *testing.B) {
	const n = 1000
	llm := fakeLLM(b, llmtest.Reply{Text: "a short answer of a few words", ChunkSize: 64})
	var perSession float64
	for range b.N {
		b.StopTimer()
		a := benchApp(b, llm.URL+"/v1", func(c *Config) { c.MaxLiveSessions = 2 * n })
		var ms runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms)
		before := ms.HeapAlloc
		for i := range n {
			s, err := a.pool.Create(context.Background(), "bench", fmt.Sprint("u", i), "")
			if err != nil {
				b.Fatal(err)
			}
			if _, err := a.pool.Turn(context.Background(), "bench", s.ID, session.TurnInput{Content: "a short question"}); err != nil {
				b.Fatal(err)
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&ms)
		if live, _ := a.pool.Live(); live != n {
			b.Fatalf("live sessions = %d; want %d", live, n)
		}
		perSession = float64(ms.HeapAlloc-before) / n
		_ = a.pool.Close()
		_ = a.close()
	}
	b.ReportMetric(perSession, "heap-B/session")
}

// BenchmarkDurableTurnsHTTP64 is the whole path under load: 64 concurrent
// clients, each with its own session, post turns to agentd's HTTP API,
// which streams each from the fake LLM over HTTP and saves it with fsync
// before answering. Clients, agentd and the fake share the same cores.
func BenchmarkDurableTurnsHTTP64(b *testing.B) {
	const workers = 64
	llm := fakeLLM(b, llmtest.Reply{Text: "a short answer", ChunkSize: 64})
	a := benchApp(b, llm.URL+"/v1", nil)
	api := httptest.NewServer(a.api)
	defer api.Close()
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	post := func(path, body string) (string, error) {
		req, _ := http.NewRequest("POST", api.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+benchKey)
		req.Header.Set("X-Agentd-User", "bench")
		resp, err := hc.Do(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		if resp.StatusCode >= 300 {
			return "", fmt.Errorf("POST %s = %d %s", path, resp.StatusCode, data)
		}
		return string(data), nil
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	began := time.Now()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var id string
			for turn := 0; next.Add(1) <= int64(b.N); turn++ {
				if turn%20 == 0 {
					created, err := post("/v1/sessions", "")
					if err != nil {
						b.Error(err)
						return
					}
					id = created[strings.Index(created, `"id":"`)+6:]
					id = id[:strings.Index(id, `"`)]
				}
				if _, err := post("/v1/sessions/"+id+"/messages", `{"content":"hi"}`); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(began).Seconds(), "turns/s")
}
