package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/agentd/agentd/internal/acp"
	"github.com/agentd/agentd/internal/boltdb"
	"github.com/agentd/agentd/internal/tenant"
)

// acpOptions are serve's options that make sense for one process serving
// one client over stdio (no listener, no API keys, no request bodies), and
// who the process acts for.
func acpOptions(c *Config, tenantName, user *string) []option {
	var opts []option
	for _, o := range serveOptions(c) {
		switch o.Env {
		case "AGENTD_ADDR", "AGENTD_API_KEYS", "AGENTD_API_KEYS_FILE", "AGENTD_MAX_BODY_BYTES":
			continue
		}
		opts = append(opts, o)
	}
	return append(opts,
		option{Flag: "tenant", Env: "AGENTD_ACP_TENANT", Default: "local", Arg: "NAME",
			Usage: "tenant the process acts for: its sessions are this tenant's (1-64 letters, digits, '.', '_' or '-')",
			Apply: func(v string) error {
				if !tenant.ValidName(v) {
					return fmt.Errorf("want 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit, got %q", v)
				}
				*tenantName = v
				return nil
			}},
		option{Flag: "user", Env: "AGENTD_ACP_USER", Arg: "NAME",
			Usage: "end user the process acts for (the canary router assigns cohorts per user); default $USER",
			Apply: func(v string) error { *user = strings.TrimSpace(v); return nil }},
	)
}

// parseACP builds and validates the configuration of `agentd acp`.
func parseACP(args []string, getenv func(string) string, stdout io.Writer) (Config, acp.Peer, error) {
	var cfg Config
	peer := acp.Peer{Transport: "stdio"}
	err := parseConfig("acp", acpSummary, acpOptions(&cfg, &peer.Tenant, &peer.User), &cfg, args, getenv, stdout, func() []error {
		for _, env := range []string{"USER", "LOGNAME"} {
			if peer.User == "" {
				peer.User = strings.TrimSpace(getenv(env))
			}
		}
		if msg := acp.CheckUser(peer.User); peer.User == "" {
			return []error{errors.New("--user (AGENTD_ACP_USER): no end user: set it (USER is not set either)")}
		} else if msg != "" {
			return []error{fmt.Errorf("--user (AGENTD_ACP_USER): %s", msg)}
		}
		return nil
	})
	return cfg, peer, err
}

// acpCmd runs `agentd acp`: the Agent Client Protocol over stdin/stdout for
// one tenant and end user, on the same wiring as serve (store, governance,
// canary, pool) and its own data dir. stdout carries protocol messages
// only; logs go to stderr. At stdin EOF the running turns are cancelled
// ("connection-closed") and saved, then it exits 0; SIGTERM or SIGINT does
// the same with reason "shutdown" (prompts are answered "cancelled" first);
// a second signal exits at once.
func acpCmd(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	cfg, peer, err := parseACP(args, getenv, stdout)
	if err != nil {
		return err
	}
	log := newLogger(cfg.LogLevel, stderr)
	defer log.Sync()
	// A client that closes our stdout must not kill the process before the
	// running turns are saved: writes fail with EPIPE instead, which ends
	// the connection like a closed stdin.
	pipe := make(chan os.Signal, 1)
	signal.Notify(pipe, syscall.SIGPIPE)
	defer signal.Stop(pipe)

	a, err := startApp(ctx, cfg, new(tenant.Keys), log)
	if errors.Is(err, boltdb.ErrLocked) {
		return fmt.Errorf("data dir %s is in use by another agentd (serve or acp): give agentd acp its own --data, or connect to that agentd's GET /v1/acp over WebSocket: %w", cfg.DataDir, err)
	}
	if err != nil {
		return err
	}
	defer a.close() // last: after every turn has saved

	log.Info("acp ready on stdio", zap.String("tenant", peer.Tenant), zap.String("user", peer.User), zap.String("version", version),
		zap.String("model", cfg.Model), zap.Strings("models", cfg.Models), zap.String("llm_base_url", cfg.OpenAIBaseURL), zap.String("data", cfg.DataDir))

	errc := make(chan error, 1)
	go func() { errc <- a.acp.Serve(ctx, acp.NewStdio(stdin, stdout, 0), peer) }()
	var serveErr error
	served := false
	select {
	case serveErr = <-errc: // stdin closed: the connection's turns are cancelled and saved
		served = true
	case <-ctx.Done():
		log.Info("signal received: cancelling running turns", zap.String("shutdown_timeout", cfg.ShutdownTimeout.String()))
	}
	began := time.Now()
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
	defer cancel()
	err = a.pool.Shutdown(sctx) // cancel what still runs ("shutdown"), wait for the saves
	if !served {
		select {
		case serveErr = <-errc: // prompts answered, connection closed
		case <-sctx.Done():
			err = errors.Join(err, errors.New("the ACP connection did not close in time"))
		}
	}
	if err = errors.Join(err, serveErr); err != nil {
		log.Error("shutdown incomplete", zap.Error(err), zap.String("took", time.Since(began).String()))
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("stopped: every session saved", zap.String("took", time.Since(began).String()))
	return nil
}

const acpSummary = `Speaks the Agent Client Protocol (ACP v1) on stdin/stdout, for an editor or any
ACP client that starts agentd as its agent: JSON-RPC, one message per line;
stdout carries protocol messages only, logs go to stderr. The process acts for
one tenant and end user (--tenant, --user) and runs what serve runs on its own
data dir: sessions persist in DIR/agentd.db, so a client reconnects with
session/load, also after a restart, and the HTTP API of an agentd later started
on the same data dir sees the same sessions. Two processes cannot share a data
dir; for many clients, run serve and connect to GET /v1/acp over WebSocket.
At stdin EOF running turns are cancelled ("connection-closed") and saved, then
it exits 0; SIGTERM or SIGINT does the same with reason "shutdown". A second
signal exits at once.`
