package agent

import (
	"context"
	"errors"
)

// Cancellation reasons used by agentd (Agentao's vocabulary).
const (
	ReasonUserCancel         = "user-cancel"
	ReasonClientDisconnected = "client-disconnected"
	ReasonTimeout            = "timeout"
	ReasonShutdown           = "shutdown"
)

// CancelError is the cause attached to a turn's context when it is cancelled
// on purpose. Cancel a turn with context.WithCancelCause and Cancelled(reason).
type CancelError struct{ Reason string }

func (e *CancelError) Error() string { return "turn cancelled: " + e.Reason }

// Cancelled returns the cancellation cause for reason.
func Cancelled(reason string) error { return &CancelError{Reason: reason} }

// CancelReason reports whether ctx is done and, if so, why: the reason of a
// CancelError cause, "timeout" for an expired deadline, or "cancelled".
func CancelReason(ctx context.Context) (string, bool) {
	if ctx.Err() == nil {
		return "", false
	}
	cause := context.Cause(ctx)
	var ce *CancelError
	switch {
	case errors.As(cause, &ce):
		return ce.Reason, true
	case errors.Is(cause, context.DeadlineExceeded):
		return ReasonTimeout, true
	default:
		return "cancelled", true
	}
}
