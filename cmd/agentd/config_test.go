package main

import (
	"errors"
	"flag"
	"io"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestParseServe(t *testing.T) {
	base := map[string]string{"OPENAI_MODEL": "gpt-4o", "OPENAI_API_KEY": "sk-x", "AGENTD_API_KEYS": "acme-key-0123456789=acme"}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		check   func(t *testing.T, c Config)
		wantErr []string // every one must appear
	}{
		{name: "defaults", env: base, check: func(t *testing.T, c Config) {
			if c.Addr != ":8080" || c.DataDir != "/data" || c.ShutdownTimeout != 8*time.Second || c.LLMMaxAttempts != 5 ||
				c.MaxIterations != 100 || c.SessionTTL != 30*time.Minute || c.MaxLiveSessions != 500 || c.MaxBodyBytes != 1<<20 {
				t.Errorf("defaults = %+v", c)
			}
			if len(c.Models) != 1 || c.Models[0] != "gpt-4o" {
				t.Errorf("catalog = %v; want the model alone", c.Models)
			}
			if h := c.HTTP; h.ReadHeader != 10*time.Second || h.Read != 30*time.Second || h.Write != 30*time.Second || h.Idle != 2*time.Minute ||
				c.WSPingInterval != 30*time.Second || c.WSPongTimeout != 30*time.Second {
				t.Errorf("timeouts = %+v, ping %v, pong %v", h, c.WSPingInterval, c.WSPongTimeout)
			}
		}},
		{name: "timeouts", args: []string{"--write-timeout=5s", "--ws-pong-timeout", "2s"}, env: with("AGENTD_READ_TIMEOUT", "1m", "AGENTD_WS_PING_INTERVAL", "250ms"),
			check: func(t *testing.T, c Config) {
				if c.HTTP.Read != time.Minute || c.HTTP.Write != 5*time.Second || c.WSPingInterval != 250*time.Millisecond || c.WSPongTimeout != 2*time.Second {
					t.Errorf("timeouts = %+v, ping %v, pong %v", c.HTTP, c.WSPingInterval, c.WSPongTimeout)
				}
			}},
		{name: "bad timeouts", env: with("AGENTD_READ_TIMEOUT", "0s", "AGENTD_IDLE_TIMEOUT", "soon"),
			wantErr: []string{"AGENTD_READ_TIMEOUT", "AGENTD_IDLE_TIMEOUT"}},
		{name: "environment", env: with("AGENTD_ADDR", "127.0.0.1:9000", "AGENTD_SHUTDOWN_TIMEOUT", "5s", "AGENTD_MODELS", "gpt-5, gpt-4o ,"),
			check: func(t *testing.T, c Config) {
				if c.Addr != "127.0.0.1:9000" || c.ShutdownTimeout != 5*time.Second || strings.Join(c.Models, ",") != "gpt-4o,gpt-5" {
					t.Errorf("from env: %+v", c)
				}
			}},
		{name: "a flag beats the environment", args: []string{"--addr", ":7000", "--shutdown-timeout=3s"}, env: with("AGENTD_ADDR", ":9000"),
			check: func(t *testing.T, c Config) {
				if c.Addr != ":7000" || c.ShutdownTimeout != 3*time.Second {
					t.Errorf("flags: %+v", c)
				}
			}},
		{name: "local endpoint needs no key", env: with("OPENAI_API_KEY", "", "OPENAI_BASE_URL", "http://localhost:11434/v1/"),
			check: func(t *testing.T, c Config) {
				if c.OpenAIBaseURL != "http://localhost:11434/v1" {
					t.Errorf("base URL = %q", c.OpenAIBaseURL)
				}
			}},
		{name: "every problem at once", env: map[string]string{"AGENTD_LLM_MAX_ATTEMPTS": "x", "AGENTD_TURN_TIMEOUT": "-1s"},
			wantErr: []string{"AGENTD_LLM_MAX_ATTEMPTS", "AGENTD_TURN_TIMEOUT", "--model", "no API keys", "OPENAI_API_KEY is required"}},
		{name: "usage zone", env: with("AGENTD_USAGE_ZONE", "Asia/Kolkata"), check: func(t *testing.T, c Config) {
			if c.UsageZone == nil || c.UsageZone.String() != "Asia/Kolkata" {
				t.Errorf("usage zone = %v; want Asia/Kolkata", c.UsageZone)
			}
		}},
		{name: "usage zone default", env: base, check: func(t *testing.T, c Config) {
			if c.UsageZone != time.UTC {
				t.Errorf("usage zone = %v; want UTC", c.UsageZone)
			}
		}},
		{name: "bad usage zone", env: with("AGENTD_USAGE_ZONE", "Mars/Olympus"), wantErr: []string{"AGENTD_USAGE_ZONE", "IANA"}},
		{name: "bad URL", env: with("OPENAI_BASE_URL", "localhost:11434"), wantErr: []string{"OPENAI_BASE_URL", "http://"}},
		{name: "unknown flag", args: []string{"--nope"}, env: base, wantErr: []string{"nope", "--help"}},
		{name: "stray argument", args: []string{"extra"}, env: base, wantErr: []string{`unexpected argument "extra"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseServe(tc.args, env(tc.env), io.Discard)
			if len(tc.wantErr) > 0 {
				var ue usageError
				if !errors.As(err, &ue) {
					t.Fatalf("parseServe = %v; want a usage error", err)
				}
				for _, w := range tc.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not mention %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("parseServe = %v", err)
			}
			tc.check(t, c)
		})
	}
}

func TestHelp(t *testing.T) {
	var out strings.Builder
	_, err := parseServe([]string{"--help"}, env(nil), &out)
	if !errors.Is(err, flag.ErrHelp) || !strings.Contains(out.String(), "AGENTD_SHUTDOWN_TIMEOUT") {
		t.Errorf("--help = %v\n%s", err, out.String())
	}
}
