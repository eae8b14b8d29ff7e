package mcptools

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func lookupOf(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := vars[k]
		return v, ok
	}
}

var testVars = lookupOf(map[string]string{
	"TOKEN": "t0k", "HOME": "/home/u", "BIN": "/usr/bin", "HOST": "mcp.example.com", "EMPTY": "",
})

func TestParseGood(t *testing.T) {
	cases := []struct {
		name string
		json string
		want ServerConfig
	}{
		{"stdio inferred",
			`{"mcpServers":{"gh":{"command":"npx","args":["-y","@modelcontextprotocol/server-github"],"env":{"GITHUB_TOKEN":"${TOKEN}"},"trust":false,"timeout":60}}}`,
			ServerConfig{Name: "gh", Transport: TransportStdio, Command: "npx", Args: []string{"-y", "@modelcontextprotocol/server-github"},
				Env: map[string]string{"GITHUB_TOKEN": "t0k"}, StartupTimeout: 60 * time.Second}},
		{"http inferred from a bare url",
			`{"mcpServers":{"remote":{"url":"https://mcp.example.com/mcp","headers":{"Authorization":"Bearer ${TOKEN}"},"timeout":{"startup":30,"request":120}}}}`,
			ServerConfig{Name: "remote", Transport: TransportHTTP, URL: "https://mcp.example.com/mcp",
				Headers: map[string]string{"Authorization": "Bearer t0k"}, StartupTimeout: 30 * time.Second, RequestTimeout: 120 * time.Second}},
		{"sse explicit",
			`{"mcpServers":{"legacy":{"type":"sse","url":"https://$HOST/sse"}}}`,
			ServerConfig{Name: "legacy", Transport: TransportSSE, URL: "https://mcp.example.com/sse", StartupTimeout: DefaultStartupTimeout}},
		{"alias streamable-http",
			`{"mcpServers":{"a":{"type":"streamable-http","url":"http://127.0.0.1:3001/mcp"}}}`,
			ServerConfig{Name: "a", Transport: TransportHTTP, URL: "http://127.0.0.1:3001/mcp", StartupTimeout: DefaultStartupTimeout}},
		{"alias streamable_http",
			`{"mcpServers":{"a":{"type":"streamable_http","url":"http://h/mcp"}}}`,
			ServerConfig{Name: "a", Transport: TransportHTTP, URL: "http://h/mcp", StartupTimeout: DefaultStartupTimeout}},
		{"alias streamablehttp, any case",
			`{"mcpServers":{"a":{"type":"StreamableHTTP","url":"http://h/mcp"}}}`,
			ServerConfig{Name: "a", Transport: TransportHTTP, URL: "http://h/mcp", StartupTimeout: DefaultStartupTimeout}},
		{"explicit stdio, cwd and expansion everywhere",
			`{"mcpServers":{"fs":{"type":"stdio","command":"$BIN/node","args":["$HOME/x","${HOME}y","$$","$1","${1A}","a$","$UNSET-z"],"cwd":"${HOME}/w","trust":true}}}`,
			ServerConfig{Name: "fs", Transport: TransportStdio, Command: "/usr/bin/node",
				Args: []string{"/home/u/x", "/home/uy", "$$", "$1", "${1A}", "a$", "-z"}, Cwd: "/home/u/w", Trust: true,
				StartupTimeout: DefaultStartupTimeout, UnsetVars: []string{"UNSET"}}},
		{"request only, fractional startup",
			`{"mcpServers":{"a":{"command":"x","timeout":{"request":1.5}}, "b":{"command":"y","timeout":0.25}}}`,
			ServerConfig{Name: "a", Transport: TransportStdio, Command: "x", StartupTimeout: DefaultStartupTimeout, RequestTimeout: 1500 * time.Millisecond}},
		{"nulls are absent",
			`{"mcpServers":{"a":{"command":"x","args":null,"trust":null,"timeout":null}}}`,
			ServerConfig{Name: "a", Transport: TransportStdio, Command: "x", StartupTimeout: DefaultStartupTimeout}},
		{"empty var is set, not unset",
			`{"mcpServers":{"a":{"command":"x${EMPTY}"}}}`,
			ServerConfig{Name: "a", Transport: TransportStdio, Command: "x", StartupTimeout: DefaultStartupTimeout}},
		{"schema key allowed",
			`{"$schema":"x","mcpServers":{"a":{"command":"x"}}}`,
			ServerConfig{Name: "a", Transport: TransportStdio, Command: "x", StartupTimeout: DefaultStartupTimeout}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := Parse([]byte(c.json), testVars)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			got := cfg.Servers[c.want.Name]
			if !reflect.DeepEqual(got, c.want) {
				t.Fatalf("got  %+v\nwant %+v", got, c.want)
			}
		})
	}
}

func TestParseEmptyAndOrder(t *testing.T) {
	for _, doc := range []string{`{}`, `{"mcpServers":{}}`, `{"mcpServers":null}`} {
		cfg, err := Parse([]byte(doc), nil)
		if err != nil || len(cfg.Servers) != 0 {
			t.Errorf("Parse(%s) = %v, %v", doc, cfg, err)
		}
	}
	cfg, err := Parse([]byte(`{"mcpServers":{"b":{"command":"x"},"a":{"command":"y"}}}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Names(); !reflect.DeepEqual(got, []string{"a", "b"}) {
		t.Errorf("Names() = %v", got)
	}
}

func TestParseBad(t *testing.T) {
	cases := []struct {
		name string
		json string
		want []string // substrings of the problems, in order
	}{
		{"not json", `{"mcpServers":`, []string{"invalid JSON"}},
		{"empty file", ` `, []string{"empty file"}},
		{"not an object", `[]`, []string{"want a JSON object"}},
		{"trailing data", `{} {}`, []string{"invalid JSON"}},
		{"unknown top-level key", `{"mcpServer":{}}`, []string{`mcpServer: unknown key`}},
		{"servers not an object", `{"mcpServers":[]}`, []string{"mcpServers: must be an object"}},
		{"entry not an object", `{"mcpServers":{"a":"npx"}}`, []string{"mcpServers.a: must be an object"}},
		{"entry null", `{"mcpServers":{"a":null}}`, []string{"mcpServers.a: must be an object"}},
		{"unknown type", `{"mcpServers":{"a":{"type":"websocket","url":"http://h"}}}`, []string{`mcpServers.a.type: unknown type "websocket"`}},
		{"missing command and url", `{"mcpServers":{"a":{"trust":true}}}`, []string{"mcpServers.a: missing command (stdio) or url"}},
		{"stdio type without command", `{"mcpServers":{"a":{"type":"stdio"}}}`, []string{"mcpServers.a: missing command"}},
		{"sse without url", `{"mcpServers":{"a":{"type":"sse"}}}`, []string{"mcpServers.a: missing url"}},
		{"both command and url", `{"mcpServers":{"a":{"command":"x","url":"http://h"}}}`, []string{"both command and url"}},
		{"url field on stdio", `{"mcpServers":{"a":{"type":"stdio","command":"x","url":"http://h","headers":{}}}}`,
			[]string{"mcpServers.a.url: is only for http", "mcpServers.a.headers: is only for http"}},
		{"stdio fields on http", `{"mcpServers":{"a":{"type":"http","url":"http://h","args":[],"env":{},"cwd":"."}}}`,
			[]string{"mcpServers.a.args: is only for stdio", "mcpServers.a.env: is only for stdio", "mcpServers.a.cwd: is only for stdio"}},
		{"typo field", `{"mcpServers":{"a":{"command":"x","arg":["y"]}}}`, []string{`mcpServers.a.arg: unknown field`}},
		{"duplicate server", `{"mcpServers":{"a":{"command":"x"},"a":{"command":"y"}}}`, []string{"mcpServers.a: duplicate key"}},
		{"duplicate field", `{"mcpServers":{"a":{"command":"x","command":"y"}}}`, []string{"mcpServers.a.command: duplicate key"}},
		{"empty name", `{"mcpServers":{"":{"command":"x"}}}`, []string{"a server name is empty"}},
		{"blank name", `{"mcpServers":{"  ":{"command":"x"}}}`, []string{"a server name is empty"}},
		{"name without a letter", `{"mcpServers":{"-.-":{"command":"x"}}}`, []string{"empty tool prefix"}},
		{"name too long", `{"mcpServers":{"` + strings.Repeat("n", MaxServerNameLen+1) + `":{"command":"x"}}}`, []string{"at most 40"}},
		{"same prefix", `{"mcpServers":{"my-db":{"command":"x"},"my.db":{"command":"y"}}}`, []string{"give the same tool prefix mcp_my_db_"}},
		{"command not a string", `{"mcpServers":{"a":{"command":["npx"]}}}`, []string{"mcpServers.a.command: must be a string"}},
		{"command empty after expansion", `{"mcpServers":{"a":{"command":"$UNSET"}}}`, []string{"mcpServers.a.command: is empty"}},
		{"args not strings", `{"mcpServers":{"a":{"command":"x","args":["a",1]}}}`, []string{"mcpServers.a.args[1]: must be a string"}},
		{"args not an array", `{"mcpServers":{"a":{"command":"x","args":"a b"}}}`, []string{"mcpServers.a.args: must be an array"}},
		{"env value a number", `{"mcpServers":{"a":{"command":"x","env":{"PORT":3000}}}}`, []string{"mcpServers.a.env.PORT: must be a string"}},
		{"env not an object", `{"mcpServers":{"a":{"command":"x","env":["A=1"]}}}`, []string{"mcpServers.a.env: must be an object"}},
		{"bad url scheme", `{"mcpServers":{"a":{"url":"ftp://h/x"}}}`, []string{"mcpServers.a.url: must be an http"}},
		{"url without host", `{"mcpServers":{"a":{"url":"http:///x"}}}`, []string{"mcpServers.a.url: has no host"}},
		{"url empty after expansion", `{"mcpServers":{"a":{"url":"${UNSET}"}}}`, []string{"mcpServers.a.url: is empty"}},
		{"bad header name", `{"mcpServers":{"a":{"url":"http://h","headers":{"Bad Header":"x"}}}}`, []string{`header name "Bad Header"`}},
		{"header value injection", `{"mcpServers":{"a":{"url":"http://h","headers":{"X":"a\r\nB: c"}}}}`, []string{"mcpServers.a.headers.X: value contains a line break"}},
		{"trust not a bool", `{"mcpServers":{"a":{"command":"x","trust":"yes"}}}`, []string{"mcpServers.a.trust: must be true or false"}},
		{"timeout zero", `{"mcpServers":{"a":{"command":"x","timeout":0}}}`, []string{"mcpServers.a.timeout: must be a positive number"}},
		{"timeout negative", `{"mcpServers":{"a":{"command":"x","timeout":-5}}}`, []string{"mcpServers.a.timeout: must be a positive number"}},
		{"timeout string", `{"mcpServers":{"a":{"command":"x","timeout":"60"}}}`, []string{"mcpServers.a.timeout: must be a positive number of seconds (the startup timeout) or"}},
		{"timeout in ms", `{"mcpServers":{"a":{"command":"x","timeout":60000000}}}`, []string{"seconds, not milliseconds"}},
		{"timeout unknown key", `{"mcpServers":{"a":{"command":"x","timeout":{"connect":5}}}}`, []string{"mcpServers.a.timeout.connect: unknown field"}},
		{"timeout request not a number", `{"mcpServers":{"a":{"command":"x","timeout":{"request":"2m"}}}}`, []string{"mcpServers.a.timeout.request: must be a number"}},
		{"timeout startup zero", `{"mcpServers":{"a":{"command":"x","timeout":{"startup":0}}}}`, []string{"mcpServers.a.timeout.startup: must be a positive number"}},
		{"every problem is reported",
			`{"mcpServers":{
  "a":{"type":"bogus"},
  "b":{"command":"x","timeout":-1},
  "c":{"url":"http://h","extra":1}
}}`,
			[]string{`line 2: mcpServers.a.type: unknown type`, "line 3: mcpServers.b.timeout", "line 4: mcpServers.c.extra: unknown field"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := Parse([]byte(c.json), testVars)
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("Parse = %+v, %v; want a *ConfigError", cfg, err)
			}
			if len(ce.Problems) != len(c.want) {
				t.Fatalf("problems:\n%v\nwant %d: %q", err, len(c.want), c.want)
			}
			for i, w := range c.want {
				if got := ce.Problems[i].Error(); !strings.Contains(got, w) {
					t.Errorf("problem %d = %q; want it to contain %q", i, got, w)
				}
			}
			if cfg.Servers != nil {
				t.Errorf("a Config came with the error: %+v", cfg)
			}
		})
	}
}

func TestConfigErrorFormat(t *testing.T) {
	_, err := Parse([]byte("{\n\"mcpServers\": {\n  \"a\": {\"type\": \"x\"},\n  \"b\": {}\n}}"), nil)
	want := "line 3: mcpServers.a.type: unknown type \"x\" (want stdio, http or sse; streamable-http is http)\n" +
		"line 4: mcpServers.b: missing command (stdio) or url (http, sse)"
	if err == nil || err.Error() != want {
		t.Fatalf("Error() =\n%v\nwant\n%s", err, want)
	}
}

func TestExpandVars(t *testing.T) {
	cases := map[string]string{
		"plain":          "plain",
		"$TOKEN":         "t0k",
		"${TOKEN}":       "t0k",
		"a${TOKEN}b":     "at0kb",
		"$TOKEN_x":       "",
		"${TOKEN}_x":     "t0k_x",
		"$":              "$",
		"${":             "${",
		"${TOKEN":        "${TOKEN",
		"$-":             "$-",
		"${}":            "${}",
		"$$TOKEN":        "$t0k",
		"$HOME/$BIN":     "/home/u//usr/bin",
		"é$TOKEN€":       "ét0k€",
		"${NOPE}${HOME}": "/home/u",
	}
	for in, want := range cases {
		unset := map[string]bool{}
		if got := expandVars(in, testVars, unset); got != want {
			t.Errorf("expandVars(%q) = %q; want %q", in, got, want)
		}
	}
}
