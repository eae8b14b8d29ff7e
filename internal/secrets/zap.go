package secrets

import (
	"fmt"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Core wraps a zap core so that every log line agentd writes has its
// credential-shaped strings redacted (Redact): the message and every field
// that can carry outside text — strings, errors (a provider's or a tool's
// answer, an MCP server's stderr), stringers, and structured values
// (arrays, objects, zap.Any), which are written as their redacted JSON text
// when they held one. Only what is logged changes: stored sessions and
// what is sent to a model never go through it.
func Core(c zapcore.Core) zapcore.Core { return redacting{c} }

type redacting struct{ zapcore.Core }

func (r redacting) With(fields []zapcore.Field) zapcore.Core {
	return redacting{r.Core.With(redactFields(fields))}
}

func (r redacting) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if r.Enabled(e.Level) {
		return ce.AddCore(e, r)
	}
	return ce
}

func (r redacting) Write(e zapcore.Entry, fields []zapcore.Field) error {
	e.Message = Redact(e.Message)
	return r.Core.Write(e, redactFields(fields))
}

// redactFields returns fields with their secrets redacted, copying only
// when one changes.
func redactFields(fields []zapcore.Field) []zapcore.Field {
	out := fields
	set := func(i int, f zapcore.Field) {
		if &out[0] == &fields[0] {
			out = append([]zapcore.Field(nil), fields...)
		}
		out[i] = f
	}
	for i, f := range fields {
		switch f.Type {
		case zapcore.StringType:
			if red := Redact(f.String); red != f.String {
				set(i, zap.String(f.Key, red))
			}
		case zapcore.ErrorType, zapcore.StringerType:
			text := fieldText(f)
			if red := Redact(text); red != text {
				set(i, zap.String(f.Key, red))
			}
		case zapcore.ArrayMarshalerType, zapcore.ObjectMarshalerType, zapcore.ReflectType:
			enc := zapcore.NewJSONEncoder(zapcore.EncoderConfig{})
			buf, err := enc.EncodeEntry(zapcore.Entry{}, []zapcore.Field{f})
			if err != nil {
				continue
			}
			text := buf.String()
			buf.Free()
			if red := Redact(text); red != text {
				set(i, zap.String(f.Key, red))
			}
		}
	}
	return out
}

// fieldText is what zap writes for an error or a stringer field.
func fieldText(f zapcore.Field) (text string) {
	defer func() {
		if recover() != nil { // a nil pointer's String, as zap guards against
			text = "<nil>"
		}
	}()
	switch v := f.Interface.(type) {
	case error:
		return v.Error()
	case fmt.Stringer:
		return v.String()
	}
	return ""
}
