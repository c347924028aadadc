// Package inputerr marks errors that are the caller's fault: a broken file
// the caller named, a request or setting out of range, a prompt too long
// for the model. Servers answer them with a 4xx status and everything else
// with a 5xx, by the error's kind and never by its wording.
package inputerr

import (
	"errors"
	"fmt"
)

// bad wraps an error of the caller's making.
type bad struct{ err error }

func (e *bad) Error() string { return e.err.Error() }
func (e *bad) Unwrap() error { return e.err }

// Wrap marks err as the caller's fault; nil stays nil.
func Wrap(err error) error {
	if err == nil || Is(err) {
		return err
	}
	return &bad{err}
}

// Errorf is fmt.Errorf marked as the caller's fault.
func Errorf(format string, args ...any) error { return &bad{fmt.Errorf(format, args...)} }

// Is reports whether err, or an error it wraps, is the caller's fault.
func Is(err error) bool {
	var b *bad
	return errors.As(err, &b)
}
