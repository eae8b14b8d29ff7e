package secrets_test

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/agentd/agentd/internal/secrets"
)

type stringer string

func (s stringer) String() string { return string(s) }

func TestCoreRedactsEveryField(t *testing.T) {
	leaks := []string{openai, anthropic, aws, ghToken, jwt}
	cases := []struct {
		name string
		log  func(l *zap.Logger, secret string)
	}{
		{"message", func(l *zap.Logger, s string) { l.Info("provider said: bad key " + s) }},
		{"string", func(l *zap.Logger, s string) { l.Info("x", zap.String("body", "the key "+s+" is invalid")) }},
		{"error", func(l *zap.Logger, s string) {
			l.Error("x", zap.Error(errors.New("401 from the provider: Incorrect API key provided: "+s)))
		}},
		{"named error", func(l *zap.Logger, s string) { l.Warn("x", zap.NamedError("cause", errors.New("stderr: token="+s))) }},
		{"stringer", func(l *zap.Logger, s string) { l.Info("x", zap.Stringer("url", stringer("https://h/?k="+s))) }},
		{"strings", func(l *zap.Logger, s string) {
			l.Info("x", zap.Strings("args", []string{"curl", "-H", "Authorization: Bearer " + s}))
		}},
		{"any", func(l *zap.Logger, s string) { l.Info("x", zap.Any("env", map[string]string{"OPENAI_API_KEY": s})) }},
		{"with", func(l *zap.Logger, s string) { l.With(zap.String("mcp_stderr", "auth "+s)).Info("x") }},
	}
	for _, c := range cases {
		for _, secret := range leaks {
			var buf bytes.Buffer
			core := zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(&buf), zapcore.DebugLevel)
			c.log(zap.New(secrets.Core(core)), secret)
			out := buf.String()
			if strings.Contains(out, secret) || !strings.Contains(out, "[REDACTED:") {
				t.Errorf("%s: the line keeps the secret or does not say it redacted: %s", c.name, out)
			}
		}
	}
}

func TestCoreLeavesOrdinaryLinesAlone(t *testing.T) {
	var plain, wrapped bytes.Buffer
	enc := zap.NewProductionEncoderConfig()
	enc.TimeKey = ""
	for _, buf := range []*bytes.Buffer{&plain, &wrapped} {
		core := zapcore.NewCore(zapcore.NewJSONEncoder(enc), zapcore.AddSync(buf), zapcore.DebugLevel)
		if buf == &wrapped {
			core = secrets.Core(core)
		}
		l := zap.New(core).With(zap.String("session_id", "sess_0123456789abcdef0123456789abcdef_agentd-0"))
		l.Info("request", zap.String("path", "/v1/sessions/sess_0123456789abcdef0123456789abcdef/messages"),
			zap.Int("status", 200), zap.Error(errors.New("context canceled")), zap.Strings("diff", []string{"model: gpt-4o → gpt-5"}))
	}
	if plain.String() != wrapped.String() {
		t.Errorf("a line without secrets changed:\n%s\n%s", plain.String(), wrapped.String())
	}
}

// BenchmarkCore is a typical access-log line written plain and through the
// redacting core, side by side.
func BenchmarkCore(b *testing.B) {
	for _, redact := range []bool{false, true} {
		name := "plain"
		if redact {
			name = "redacting"
		}
		b.Run(name, func(b *testing.B) {
			core := zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(io.Discard), zapcore.InfoLevel)
			if redact {
				core = secrets.Core(core)
			}
			l := zap.New(core).Named("http")
			b.ReportAllocs()
			for b.Loop() {
				l.Info("request", zap.String("method", "POST"), zap.String("path", "/v1/sessions/sess_0123456789abcdef0123456789abcdef_agentd-0/messages"),
					zap.Int("status", 200), zap.String("tenant", "acme"), zap.Int64("duration_ms", 3))
			}
		})
	}
}
