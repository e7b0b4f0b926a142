package cli

import (
	"errors"
	"fmt"
	"io"
	"strings"
)

// HintError is an error with the next step a user should take. The plugin prints it as one line:
// "error: <message> (hint: <hint>)".
type HintError struct {
	Err  error
	Hint string
}

func (e *HintError) Error() string { return e.Err.Error() }
func (e *HintError) Unwrap() error { return e.Err }

// WithHint attaches a hint to err (nil stays nil).
func WithHint(err error, hint string, args ...any) error {
	if err == nil {
		return nil
	}
	return &HintError{Err: err, Hint: fmt.Sprintf(hint, args...)}
}

// PrintError writes err as a single line to w, with the hint of the outermost HintError if any.
func PrintError(w io.Writer, err error) {
	msg := strings.Join(strings.Fields(err.Error()), " ")
	var h *HintError
	if errors.As(err, &h) && h.Hint != "" {
		fmt.Fprintf(w, "error: %s (hint: %s)\n", msg, h.Hint)
		return
	}
	fmt.Fprintf(w, "error: %s\n", msg)
}
