package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startRun runs run in the background and returns the base URL it printed
// and a channel with its result.
func startRun(t *testing.T, ctx context.Context) (string, <-chan error) {
	t.Helper()
	pr, pw := io.Pipe()
	errc := make(chan error, 1)
	go func() {
		err := run(ctx, []string{"--addr", "127.0.0.1:0"}, pw, io.Discard)
		pw.Close()
		errc <- err
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the address: %v", err)
	}
	go io.Copy(io.Discard, pr)
	url, ok := strings.CutPrefix(strings.TrimSpace(line), "listening on ")
	if !ok || !strings.HasPrefix(url, "http://127.0.0.1:") || !strings.HasSuffix(url, "/v1") {
		t.Fatalf("stdout = %q; want \"listening on http://127.0.0.1:PORT/v1\"", line)
	}
	return url, errc
}

func TestRun(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	url, errc := startRun(t, ctx)

	resp, err := http.Post(url+"/chat/completions", "application/json",
		strings.NewReader(`{"model":"m","messages":[{"role":"user","content":"ping [[sleep 1ms]]"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"content":"echo: ping"`) {
		t.Errorf("reply %d %s; want 200 with echo: ping", resp.StatusCode, body)
	}

	// A hanging reply must not hold up the exit.
	hung, err := http.Post(url+"/chat/completions", "application/json",
		strings.NewReader(`{"model":"m","stream":true,"messages":[{"role":"user","content":"[[hang]]"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	defer hung.Body.Close()
	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Errorf("run = %v; want nil", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("run did not return after cancel")
	}
}

func TestRunArgs(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantErr    bool
		wantStderr string
	}{
		{"help", []string{"--help"}, false, "[[tool NAME {json args}]]"},
		{"unknown flag", []string{"--nope"}, true, "flag provided but not defined"},
		{"extra argument", []string{"serve"}, true, "Usage: fakellm"},
		{"bad address", []string{"--addr", "256.0.0.1:99999"}, true, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr strings.Builder
			err := run(t.Context(), tc.args, &stdout, &stderr)
			if (err != nil) != tc.wantErr {
				t.Errorf("run(%q) = %v; want error %v", tc.args, err, tc.wantErr)
			}
			if !strings.Contains(stderr.String(), tc.wantStderr) {
				t.Errorf("stderr = %q; want it to contain %q", stderr.String(), tc.wantStderr)
			}
		})
	}
}

// TestSIGTERM runs the real main in a child process and stops it as Docker
// would.
func TestSIGTERM(t *testing.T) {
	if os.Getenv("FAKELLM_TEST_MAIN") == "1" {
		os.Args = []string{"fakellm", "--addr", "127.0.0.1:0"}
		main()
		os.Exit(0)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestSIGTERM$")
	cmd.Env = append(os.Environ(), "FAKELLM_TEST_MAIN=1")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "listening on http://") {
		t.Fatalf("child stdout = %q, %v; want the address", line, err)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("child exit: %v; want 0", err)
		}
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		t.Fatal("child did not exit on SIGTERM")
	}
}
