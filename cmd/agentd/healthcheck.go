package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

func healthcheck(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	var cfg Config
	opts := []option{serveOptions(&cfg)[0]} // --addr / AGENTD_ADDR
	summary := "Checks a local agentd: GET http://127.0.0.1:PORT/healthz with PORT from --addr.\nExit status 0 if it answers 200, 1 otherwise. Used by the container HEALTHCHECK."
	if err := parseOptions("healthcheck", summary, opts, args, getenv, stdout); err != nil {
		return err
	}
	host, port, _ := net.SplitHostPort(cfg.Addr)
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	url := "http://" + net.JoinHostPort(host, port) + "/healthz"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("unhealthy: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("unhealthy: %s answered %s", url, resp.Status)
	}
	fmt.Fprintln(stdout, "ok")
	return nil
}
