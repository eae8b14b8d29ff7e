package adminctl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/agentd/agentd/internal/flagenv"
)

// sessionsCmd is `agentd sessions move`: the scale-down step of a fleet
// (docs/fleet.md).
func Sessions(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) == 0 || args[0] != "move" {
		if len(args) > 0 && (args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
			fmt.Fprintln(stdout, "Usage: agentd sessions move --from NODE --to NODE [flags]")
			return nil
		}
		return usage(errors.New(`usage: agentd sessions move --from NODE --to NODE (see "agentd sessions move --help")`))
	}
	var c clientConfig
	var from, to string
	wait := 10 * time.Minute
	opts := append(clientOptions(&c),
		option{Flag: "from", Arg: "NODE", Usage: "the retiring replica whose sessions move (required)", Apply: func(v string) error { from = v; return flagenv.NonEmpty(v) }},
		option{Flag: "to", Arg: "NODE", Usage: "the replica that takes them (required)", Apply: func(v string) error { to = v; return flagenv.NonEmpty(v) }},
		option{Flag: "timeout", Default: "10m", Arg: "DURATION", Usage: "how long to wait for the move to finish",
			Apply: func(v string) (err error) { wait, err = time.ParseDuration(v); return }})
	summary := `Moves every session of a replica (records, histories, workspaces) to another
replica of the fleet, with the session ids kept valid: run it before scaling a
StatefulSet down, for each ordinal that goes away (docs/fleet.md). Any replica
takes the call. A running turn gets 30 s to finish, then ends cancelled
("shutdown"); a session that fails to move stays where it was and is listed,
and running the command again moves what is left.

  agentd sessions move --server http://agentd:80 --from agentd-2 --to agentd-0`
	if err := parseOptions("sessions move", summary, opts, args[1:], getenv, stdout); err != nil {
		return err
	}
	servers, err := c.replicas(ctx)
	if err != nil {
		return err
	}
	c.Server = servers[0] // any replica: it asks the retiring one
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	out, raw, err := c.call(ctx, "POST", "/v1/admin/fleet/move", map[string]string{"from": from, "to": to}, nil)
	if err != nil {
		return err
	}
	if c.printJSON(stdout, raw) {
		return nil
	}
	failed := asList(out["failed"])
	fmt.Fprintf(stdout, "moved %v sessions from %s to %s\n", out["moved"], from, to)
	for _, f := range failed {
		m, _ := f.(map[string]any)
		fmt.Fprintf(stdout, "  NOT MOVED %v: %v\n", m["id"], m["error"])
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d sessions did not move and are still served by %s; run the command again", len(failed), from)
	}
	return nil
}
