package fleet

import (
	"bytes"
	"encoding/json"

	"github.com/hashicorp/go-hclog"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// newHCLogger is an hclog.Logger for raft that writes through log: hclog
// writes JSON lines to zapWriter, which logs each with its level and
// fields. Raft says much at info (every election, every connection), so
// only its warnings and errors pass unless log is at debug.
func newHCLogger(log *zap.Logger) hclog.Logger {
	level := hclog.Warn
	if log.Core().Enabled(zapcore.DebugLevel) {
		level = hclog.Debug
	}
	return hclog.New(&hclog.LoggerOptions{Name: "raft", Level: level, JSONFormat: true, Output: zapWriter{log.Named("raft")}})
}

// zapWriter takes hclog's JSON lines.
type zapWriter struct{ log *zap.Logger }

func (z zapWriter) Write(p []byte) (int, error) {
	for _, line := range bytes.Split(p, []byte("\n")) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal(line, &rec); err != nil {
			z.log.Warn(string(line))
			continue
		}
		msg, _ := rec["@message"].(string)
		lvl, _ := rec["@level"].(string)
		fields := make([]zap.Field, 0, len(rec))
		for k, v := range rec {
			if k == "@message" || k == "@level" || k == "@timestamp" || k == "@module" {
				continue
			}
			fields = append(fields, zap.Any(k, v))
		}
		switch lvl {
		case "error":
			z.log.Error(msg, fields...)
		case "warn":
			z.log.Warn(msg, fields...)
		case "info":
			z.log.Info(msg, fields...)
		default:
			z.log.Debug(msg, fields...)
		}
	}
	return len(p), nil
}
