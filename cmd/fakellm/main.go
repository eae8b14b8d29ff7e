// Command fakellm serves a fake OpenAI-compatible API (llmtest's default
// responder) so that agentd can be run end to end without a real model:
//
//	fakellm --addr 127.0.0.1:0
//
// It prints "listening on http://ADDR/v1" once it accepts connections, and
// exits 0 on SIGTERM or SIGINT. Replies are steered by directives in the
// last user message; see fakellm --help.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/agentd/agentd/internal/llm/llmtest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "fakellm:", err)
		os.Exit(1)
	}
}

// shutdownTimeout bounds the wait for in-flight replies at exit.
const shutdownTimeout = 5 * time.Second

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("fakellm", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:0", "address to listen on (port 0: any free port)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: fakellm [--addr HOST:PORT]\n\n"+
			"Serves a fake OpenAI-compatible API: POST /v1/chat/completions (streamed or not)\n"+
			"and GET /v1/models. Prints \"listening on http://ADDR/v1\" (use it as\n"+
			"OPENAI_BASE_URL) and exits on SIGTERM or SIGINT.\n\n")
		fs.PrintDefaults()
		fmt.Fprintf(fs.Output(), "\n%s", llmtest.Directives)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return fmt.Errorf("unexpected arguments: %q", fs.Args())
	}

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", *addr, err)
	}
	fake := llmtest.New()
	srv := &http.Server{Handler: fake.Handler(), ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	fmt.Fprintf(stdout, "listening on http://%s/v1\n", ln.Addr())

	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	fake.Close() // release hanging and sleeping replies so that Shutdown can finish
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	err = srv.Shutdown(sctx)
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return err
}
