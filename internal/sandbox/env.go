package sandbox

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// baseEnv names the variables of agentd's environment every command and MCP
// server gets: what a shell needs to find programs and speak the user's
// language. Everything else (an operator's cloud credentials, tokens meant
// for mcp.json, agentd's own settings) stays with agentd unless sandbox.json
// names it for a profile.
var baseEnv = []string{"PATH", "LANG", "LANGUAGE", "TERM", "TZ"}

// defaultPath is PATH when agentd's environment has none.
const defaultPath = "/usr/local/bin:/usr/bin:/bin"

// CommandEnv builds the environment of a command or MCP server from
// environ (agentd's own, os.Environ()): the base variables (PATH, LANG,
// LANGUAGE, LC_*, TERM, TZ), the variables named in extra (a profile's
// [ProfileSettings.Env]), then HOME=home and TMPDIR=tmp, the command's own
// directories. HOME stays agentd's only if extra names it. Nothing else of
// environ passes.
func CommandEnv(environ, extra []string, home, tmp string) []string {
	keep := func(name string) bool {
		return slices.Contains(baseEnv, name) || strings.HasPrefix(name, "LC_") || slices.Contains(extra, name)
	}
	out := make([]string, 0, len(baseEnv)+len(extra)+2)
	havePath := false
	for _, kv := range environ {
		name, _, ok := strings.Cut(kv, "=")
		if !ok || name == "" || name == "HOME" && home != "" && !slices.Contains(extra, "HOME") || name == "TMPDIR" && tmp != "" {
			continue
		}
		if keep(name) {
			out = append(out, kv)
			havePath = havePath || name == "PATH"
		}
	}
	if !havePath {
		out = append(out, "PATH="+defaultPath)
	}
	if home != "" && !slices.Contains(extra, "HOME") {
		out = append(out, "HOME="+home)
	}
	if tmp != "" {
		out = append(out, "TMPDIR="+tmp)
	}
	return out
}

// checkEnvName validates a variable name sandbox.json passes to commands.
// agentd's own settings and LLM provider keys are never passed, even when
// named: the shell tool drops them whatever its environment says.
func checkEnvName(s string) error {
	if s == "" {
		return errors.New("empty variable name")
	}
	for i, c := range s {
		if !(c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || i > 0 && c >= '0' && c <= '9') {
			return fmt.Errorf("%q is not a variable name", s)
		}
	}
	u := strings.ToUpper(s)
	if strings.HasPrefix(u, "AGENTD_") || strings.HasSuffix(u, "_API_KEY") || u == "LLM_EXTRA_BODY" {
		return fmt.Errorf("%s: agentd's own settings and LLM provider keys (AGENTD_*, *_API_KEY) are never passed to commands", s)
	}
	return nil
}
