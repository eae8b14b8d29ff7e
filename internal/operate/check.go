package operate

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/agentd/agentd/internal/alerts"
	"github.com/agentd/agentd/internal/probe"
	"github.com/agentd/agentd/internal/usage"
)

// Check validates the operate files of the configuration tree in dir
// (budgets.json, alerts.json, probes.json) for agentd check: one problem
// per file that is present and does not parse, as serve would refuse it.
func Check(dir string) []string {
	parsers := []struct {
		name  string
		parse func([]byte) error
	}{
		{BudgetsFile, func(b []byte) error { _, err := usage.Parse(b); return err }},
		{AlertsFile, func(b []byte) error { _, err := alerts.Parse(b); return err }},
		{ProbesFile, func(b []byte) error { _, err := probe.Parse(b); return err }},
	}
	var problems []string
	for _, p := range parsers {
		data, err := os.ReadFile(filepath.Join(dir, p.name))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err == nil {
			err = p.parse(data)
		}
		if err != nil {
			problems = append(problems, p.name+": "+err.Error())
		}
	}
	return problems
}
