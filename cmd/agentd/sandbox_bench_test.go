//go:build linux

package main_test

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/sandbox"
)

// BenchmarkSandboxedCommand measures one shell command (/bin/sh -c true)
// under the default profile, the way the shell tool starts it: through the
// hook and the agentd binary as the helper. Each iteration also runs the
// same command unconfined and, when AGENTD_BENCH_BASELINE names an agentd
// binary built from an earlier commit (whose helper takes spec version 1),
// under that binary's helper, so the figures are side by side:
//
//	git worktree add /tmp/base 235dbd0 && (cd /tmp/base && go build -o /tmp/agentd-base ./cmd/agentd)
//	AGENTD_BENCH_BASELINE=/tmp/agentd-base go test -run '^$' -bench SandboxedCommand -benchtime 200x -count 5 ./cmd/agentd/
//
// Reported: ms/cmd-sandboxed, ms/cmd-unconfined, and with a baseline
// ms/cmd-baseline and sandboxed/baseline (the target: at most 1.2).
func BenchmarkSandboxedCommand(b *testing.B) {
	ws, data := b.TempDir(), b.TempDir()
	pol := sandbox.DefaultPolicy()
	if r := sandbox.Preflight(b.Context(), binary, pol); !r.OK() {
		b.Fatalf("preflight:\n%s", r)
	}
	hook := pol.HookWith(binary, ws, "run_shell_command", "", sandbox.Confine{Hidden: []string{data}})
	baseline := os.Getenv("AGENTD_BENCH_BASELINE")
	run := func(prepare func(*exec.Cmd)) time.Duration {
		cmd := exec.Command("/bin/sh", "-c", "true")
		cmd.Dir = ws
		cmd.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + ws}
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if prepare != nil {
			prepare(cmd)
		}
		start := time.Now()
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("%v: %v: %s", cmd.Args, err, out)
		}
		return time.Since(start)
	}
	oldSpec := func(cmd *exec.Cmd) { // the helper protocol of spec version 1
		spec, _ := json.Marshal(map[string]any{"v": 1, "profile": "workspace-write-no-network", "workspace": ws,
			"hidden": []string{data}, "path": cmd.Path})
		cmd.Args = append([]string{baseline, sandbox.ExecArg, base64.RawURLEncoding.EncodeToString(spec), "--"}, cmd.Args...)
		cmd.Path = baseline
	}
	var sandboxed, unconfined, base time.Duration
	b.ResetTimer()
	for b.Loop() {
		sandboxed += run(func(cmd *exec.Cmd) {
			if err := hook(cmd); err != nil {
				b.Fatal(err)
			}
		})
		unconfined += run(nil)
		if baseline != "" {
			base += run(oldSpec)
		}
	}
	n := float64(b.N)
	ms := func(d time.Duration) float64 { return float64(d) / n / float64(time.Millisecond) }
	b.ReportMetric(ms(sandboxed), "ms/cmd-sandboxed")
	b.ReportMetric(ms(unconfined), "ms/cmd-unconfined")
	if baseline != "" {
		b.ReportMetric(ms(base), "ms/cmd-baseline")
		b.ReportMetric(float64(sandboxed)/float64(base), "sandboxed/baseline")
	}
}
