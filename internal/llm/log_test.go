package llm

import (
	"io"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// zapcoreFor returns a core that writes every entry, fields included, to w.
func zapcoreFor(w io.Writer) zapcore.Core {
	return zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewDevelopmentEncoderConfig()), zapcore.AddSync(w), zap.DebugLevel)
}
