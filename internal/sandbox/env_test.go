package sandbox

import (
	"slices"
	"strings"
	"testing"
)

func TestCommandEnv(t *testing.T) {
	environ := []string{"PATH=/usr/bin:/bin", "HOME=/root", "TMPDIR=/tmp", "LANG=C.UTF-8", "LC_ALL=C", "TERM=xterm",
		"TZ=UTC", "AWS_SECRET_ACCESS_KEY=s3cr3t", "GITHUB_TOKEN=ghp", "AGENTD_API_KEYS=k=t", "OPENAI_API_KEY=sk",
		"HTTPS_PROXY=http://proxy:3128", "=bad", "noequals"}
	tests := []struct {
		name      string
		environ   []string
		extra     []string
		home, tmp string
		want      []string
	}{
		{"base list only", environ, nil, "/ws", "/ws/.agentd/tmp",
			[]string{"PATH=/usr/bin:/bin", "LANG=C.UTF-8", "LC_ALL=C", "TERM=xterm", "TZ=UTC", "HOME=/ws", "TMPDIR=/ws/.agentd/tmp"}},
		{"a profile's names", environ, []string{"HTTPS_PROXY", "NOT_SET"}, "/ws", "",
			[]string{"PATH=/usr/bin:/bin", "LANG=C.UTF-8", "LC_ALL=C", "TERM=xterm", "TZ=UTC", "HTTPS_PROXY=http://proxy:3128", "HOME=/ws"}},
		{"HOME named: agentd's", environ, []string{"HOME"}, "/ws", "",
			[]string{"PATH=/usr/bin:/bin", "HOME=/root", "LANG=C.UTF-8", "LC_ALL=C", "TERM=xterm", "TZ=UTC"}},
		{"no PATH: a default", []string{"LANG=C"}, nil, "/ws", "",
			[]string{"LANG=C", "PATH=" + defaultPath, "HOME=/ws"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := CommandEnv(tc.environ, tc.extra, tc.home, tc.tmp); !slices.Equal(got, tc.want) {
				t.Errorf("CommandEnv = %q; want %q", got, tc.want)
			}
		})
	}
}

func TestCheckEnvName(t *testing.T) {
	for _, ok := range []string{"HTTPS_PROXY", "GOFLAGS", "_x", "a1"} {
		if err := checkEnvName(ok); err != nil {
			t.Errorf("checkEnvName(%q) = %v; want nil", ok, err)
		}
	}
	for name, want := range map[string]string{
		"": "empty", "1A": "not a variable name", "A-B": "not a variable name", "A=B": "not a variable name",
		"AGENTD_API_KEYS": "never passed", "agentd_x": "never passed", "OPENAI_API_KEY": "never passed",
		"SERP_api_key": "never passed", "LLM_EXTRA_BODY": "never passed",
	} {
		if err := checkEnvName(name); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("checkEnvName(%q) = %v; want an error containing %q", name, err, want)
		}
	}
}
