//go:build !linux

package tools

import "errors"

// waitExited cannot wait without reaping here: the caller reaps at once and
// the group kill that follows is best effort (its PGID could in theory have
// been reused).
func waitExited(int) error { return errors.ErrUnsupported }
