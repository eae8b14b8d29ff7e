package mcptools

import (
	"errors"
	"testing"
)

// FuzzParse: any mcp.json is a configuration or a *ConfigError listing
// problems that each have a message, never a panic; and a configuration's
// servers each have a name, a transport and what that transport needs,
// and timeouts within bounds.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`{}`, `{"mcpServers":{}}`, `{"mcpServers":null}`, `{"$schema":"x","mcpServers":{"a":{"command":"x"}}}`,
		// docs/configuration.md's example.
		`{"mcpServers": {
		  "github": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-github"],
		             "env": {"GITHUB_TOKEN": "${GITHUB_TOKEN}"}, "timeout": 60},
		  "search": {"url": "https://mcp.example.com/mcp", "headers": {"Authorization": "Bearer ${SEARCH_TOKEN}"},
		             "trust": true, "timeout": {"startup": 30, "request": 120}},
		  "legacy": {"type": "sse", "url": "https://mcp.example.com/sse"}}}`,
		`{"mcpServers":{"fs":{"type":"stdio","command":"$BIN/node","args":["$HOME/x","${HOME}y","$$","$1","${1A}","a$","$UNSET-z"],"cwd":"${HOME}/w","trust":true}}}`,
		`{"mcpServers":{"a":{"type":"streamable-http","url":"http://127.0.0.1:3001/mcp"}}}`,
		`{"mcpServers":{"a":{"command":"x","timeout":{"request":1.5}}, "b":{"command":"y","timeout":0.25}}}`,
		// Near misses.
		`{"mcpServers":{"a":{"command":"x","args":null,"trust":null,"timeout":null}}}`, `{"mcpServers":{"a":{"type":"websocket","url":"http://h"}}}`,
		`{"mcpServers":{"a":{"command":"x","url":"http://h"}}}`, `{"mcpServers":{"a":{"command":"x"},"a":{"command":"y"}}}`,
		`{"mcpServers":{"a":{"command":"x","timeout":1e12}}}`, `{"mcpServers":{"a\nb":{"url":"ftp://h"}}}`,
		`{"mcpServers":{"":{"command":""}}}`, `{"mcpServers":[]}`, `{"mcpServer":{}}`, `{} {}`, `{"mcpServers":`,
		`{"mcpServers":{"a":{"command":"x","env":{"K":1},"headers":{"Authorization":"Bearer sk-live"}}}}`,
	} {
		f.Add([]byte(s))
	}
	env := map[string]string{"HOME": "/home/u", "BIN": "/usr/bin", "GITHUB_TOKEN": "t", "EMPTY": ""}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(data, lookup)
		if err != nil {
			var ce *ConfigError
			if !errors.As(err, &ce) || len(ce.Problems) == 0 {
				t.Fatalf("Parse error %v (%T) is not a *ConfigError with problems", err, err)
			}
			for _, p := range ce.Problems {
				if p.Message == "" || p.Line < 0 {
					t.Errorf("problem %+v has no message or a negative line", p)
				}
			}
			if cfg.Servers != nil {
				t.Errorf("Parse returned servers %v with an error", cfg.Servers)
			}
			return
		}
		for _, name := range cfg.Names() {
			s := cfg.Servers[name]
			if s.Name != name || name == "" {
				t.Errorf("server %q is named %q", name, s.Name)
			}
			switch s.Transport {
			case TransportStdio:
				if s.Command == "" {
					t.Errorf("stdio server %q has no command", name)
				}
			case TransportHTTP, TransportSSE:
				if s.URL == "" {
					t.Errorf("%s server %q has no url", s.Transport, name)
				}
			default:
				t.Errorf("server %q has transport %q", name, s.Transport)
			}
			if s.StartupTimeout < 0 || s.StartupTimeout > MaxTimeout || s.RequestTimeout < 0 || s.RequestTimeout > MaxTimeout {
				t.Errorf("server %q has timeouts %v, %v", name, s.StartupTimeout, s.RequestTimeout)
			}
		}
	})
}
