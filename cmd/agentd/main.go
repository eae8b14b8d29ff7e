// Command agentd runs LLM agents for many users in one process: sessions
// persisted in an embedded store, an HTTP/JSON + SSE API, and a SIGTERM hook
// that loses nothing. See `agentd --help`.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"syscall"

	"github.com/agentd/agentd/internal/adminctl"
	"github.com/agentd/agentd/internal/control"
	"github.com/agentd/agentd/internal/flagenv"
	"github.com/agentd/agentd/internal/sandbox"
)

// version is set at build time: -ldflags "-X main.version=v1.2.3".
var version = "dev"

func main() {
	if len(os.Args) > 1 && os.Args[1] == sandbox.ExecArg { // the shell sandbox helper: confine, then exec
		os.Exit(sandbox.ExecMain(os.Args[2:], os.Stderr))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// After the first signal, restore the default handling: a second
	// SIGTERM or SIGINT ends the process at once.
	context.AfterFunc(ctx, stop)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	os.Exit(exitCode(err, os.Stderr))
}

func exitCode(err error, stderr io.Writer) int {
	var ue usageError
	var fe *flagenv.UsageError  // the admin client's (internal/adminctl)
	var ce *control.ConfigError // the configuration tree or mcp.json: the operator's to fix
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue), errors.As(err, &fe), errors.As(err, &ce):
		fmt.Fprintln(stderr, "agentd:", err)
		return 2
	default:
		fmt.Fprintln(stderr, "agentd:", err)
		return 1
	}
}

const mainHelp = `agentd runs LLM agents for many users in one process, and lets operators
canary a model, skills, rules, sandbox profile or instructions on a slice of users.

Usage: agentd <command> [flags]

Commands:
  serve        run the HTTP API (the main job)
  acp          speak the Agent Client Protocol on stdin/stdout, for an editor that starts agentd
  healthcheck  GET /healthz of a local agentd; exit 0 if healthy, 1 if not
  canary       show, explain or change the canary configuration of a running agentd
  rollback     halt a canary variant, or return to an earlier configuration version
  sessions     move a retiring replica's sessions to another replica of the fleet
  check        validate a configuration tree (skills, rules, sandbox, canary, secrets, prompt length)
  version      print the version

Run "agentd <command> --help" for a command's flags and environment variables.
`

// run is the whole program, with the OS passed in so tests can drive it.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, mainHelp)
		return usageError{errors.New("a command is required")}
	}
	switch cmd, rest := args[0], args[1:]; cmd {
	case "serve":
		return serve(ctx, rest, getenv, stdout, stderr)
	case "acp":
		return acpCmd(ctx, rest, getenv, os.Stdin, stdout, stderr)
	case "healthcheck":
		return healthcheck(ctx, rest, getenv, stdout)
	case "canary":
		return adminctl.Canary(ctx, rest, getenv, stdout, stderr)
	case "rollback":
		return adminctl.Rollback(ctx, rest, getenv, stdout)
	case "sessions":
		return adminctl.Sessions(ctx, rest, getenv, stdout)
	case "check":
		return check(ctx, rest, getenv, stdout)
	case "version", "--version":
		fmt.Fprintf(stdout, "agentd %s (%s %s/%s)\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
		return nil
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, mainHelp)
		return nil
	default:
		fmt.Fprint(stderr, mainHelp)
		return usageError{fmt.Errorf("unknown command %q", cmd)}
	}
}
