package permission_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/permission"
)

// FuzzCheckShell: any command is decided, without a panic, quickly.
func FuzzCheckShell(f *testing.F) {
	for _, s := range []string{
		"rm -rf /", "echo 'rm -rf /'", ":(){ :|:& };:", "bash -c \"$(echo rm -rf /)\"", "cat <<EOF | sh\nrm -rf /\nEOF",
		"f() { rm -rf \"$1\"; }; f /", "case x in (a|b) ls;; *) rm -rf /;; esac", "x=${y:-$(echo `ls`)}", "$'\\x72m' -rf /",
		"rm -rf /{a,b}{c,d}", "env -S 'a b' c", "sudo -u x -- nice -n 1 timeout 5 sh -c 'ls'", "a=(1 2); echo ${a[@]}",
		"rm -rf ${x:-/}", `x=/; rm -rf "${x%%}"`, "rm -rf /@(etc)", `x=/etc; y=x; echo "${!y}" ${x:1:2} ${x//e/f} $((1<<4))`,
		"for d in /*; do cd $d; done", "cat <<EOF | sh\n${x:-/}\nEOF",
	} {
		f.Add(s)
	}
	r, err := permission.Preset(permission.ModeFullAccess)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, command string) {
		start := time.Now()
		d := r.Check(permission.Call{Tool: permission.ShellTool, Args: map[string]any{"command": command}, Confirm: true})
		if took := time.Since(start); took > time.Second {
			t.Errorf("Check(%q) took %v", command, took)
		}
		if d.Action == permission.Deny && d.Source != permission.SourceHardline {
			t.Errorf("Check(%q) = deny by %s; only the floor denies in full-access", command, d.Source)
		}
	})
}

// FuzzParse: any file is either rules or an error with a message, without
// a panic; and what parses can be checked. The shipped rule versions
// (.agentao/permissions/*.json) are seeds.
func FuzzParse(f *testing.F) {
	shipped, err := filepath.Glob(filepath.Join("..", "..", ".agentao", "permissions", "*.json"))
	if err != nil || len(shipped) == 0 {
		f.Fatalf("no shipped rule version found: %v", err)
	}
	for _, p := range shipped {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{
		`{}`, `{"mode":"plan","rules":[{"tool":"x","args":{"a":"b"},"action":"deny"}]}`,
		`{"rules":[{"tool":"web_fetch","domain":{"url_arg":"u","allowlist":[".a"],"blocklist":["10."]}}]}`,
		`{"rules":[{"tool":"(","action":"x"},{"action":1}]}`, `[`, `{"rules":[{"tool":"*","tool":"y"}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := permission.Parse("fuzz", data)
		if (r == nil) == (err == nil) {
			t.Fatalf("Parse = %v, %v; want exactly one of rules and error", r, err)
		}
		if err != nil && err.Error() == "" {
			t.Fatal("Parse error has an empty message")
		}
		if r != nil {
			r.Check(permission.Call{Tool: "web_fetch", Args: map[string]any{"url": "https://a/", "u": 1}})
			_ = r.Snapshot()
		}
	})
}
