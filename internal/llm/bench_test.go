package llm

import (
	"errors"
	"io"
	"testing"

	openai "github.com/sashabaranov/go-openai"

	"github.com/agentd/agentd/internal/agent"
	"github.com/agentd/agentd/internal/llm/llmtest"
)

// The two benchmarks stream the same short reply from the same in-process
// fake, through Client and through go-openai directly: the difference is
// the adapter's overhead.

const benchReply = "The quick brown fox jumps over the lazy dog."

func benchServer(b *testing.B) *llmtest.Server {
	s := llmtest.NewServer(b)
	s.SetResponder(func(llmtest.Request) llmtest.Reply { return llmtest.Reply{Text: benchReply} })
	return s
}

func BenchmarkClientStream(b *testing.B) {
	s := benchServer(b)
	cfg := DefaultConfig()
	cfg.BaseURL, cfg.APIKey = s.URL(), "sk-bench"
	c, err := NewClient(cfg)
	if err != nil {
		b.Fatal(err)
	}
	req := agent.Request{Model: "fake-model", Messages: []agent.Message{{Role: agent.RoleUser, Content: "hi"}}}
	b.ReportAllocs()
	for b.Loop() {
		var n int
		resp, err := c.Stream(b.Context(), req, func(d agent.Delta) { n += len(d.Text) })
		if err != nil {
			b.Fatal(err)
		}
		if resp.Message.Content != benchReply || n != len(benchReply) {
			b.Fatalf("reply %q", resp.Message.Content)
		}
	}
}

func BenchmarkDirectOpenAI(b *testing.B) {
	s := benchServer(b)
	cfg := openai.DefaultConfig("sk-bench")
	cfg.BaseURL = s.URL()
	c := openai.NewClientWithConfig(cfg)
	req := openai.ChatCompletionRequest{
		Model:         "fake-model",
		Messages:      []openai.ChatCompletionMessage{{Role: "user", Content: "hi"}},
		StreamOptions: &openai.StreamOptions{IncludeUsage: true},
	}
	b.ReportAllocs()
	for b.Loop() {
		st, err := c.CreateChatCompletionStream(b.Context(), req)
		if err != nil {
			b.Fatal(err)
		}
		var text []byte
		for {
			chunk, err := st.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			for _, ch := range chunk.Choices {
				text = append(text, ch.Delta.Content...)
			}
		}
		st.Close()
		if string(text) != benchReply {
			b.Fatalf("reply %q", text)
		}
	}
}
