// Package adminctl is agentd's admin command-line client: the commands
// that talk to a running agentd over its admin API (agentd canary,
// agentd rollback, agentd sessions move), on one replica or several.
// cmd/agentd only dispatches to them.
package adminctl

import (
	"io"

	"github.com/agentd/agentd/internal/flagenv"
)

// option is one setting of a command (internal/flagenv reads them).
type option = flagenv.Option

// usage marks a mistake in the command line or environment (exit 2).
func usage(err error) error { return &flagenv.UsageError{Err: err} }

// parseOptions reads the settings of `agentd <name>`; a mistake is a
// *flagenv.UsageError.
func parseOptions(name, summary string, opts []option, args []string, getenv func(string) string, stdout io.Writer) error {
	return flagenv.Parse("agentd "+name, summary, opts, args, getenv, stdout)
}
