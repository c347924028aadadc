//go:build unix

// Package fifotest checks that readers of user-named files refuse a named
// pipe at once: opening one with no writer blocks, deaf to cancellation and
// to SIGTERM, so every reader goes through internal/files. Only tests
// import it.
package fifotest

import (
	"errors"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/rise-interp/rise/internal/files"
)

// Make makes a named pipe with no writer at path, replacing any file there.
func Make(t testing.TB, path string) string {
	t.Helper()
	os.Remove(path)
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	return path
}

// Refused calls read, which reads a named pipe, and fails the test unless
// it returns within five seconds with an error wrapping
// files.ErrNotRegular; what names the reader in failures. It returns the
// error.
func Refused(t testing.TB, what string, read func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- read() }()
	select {
	case err := <-done:
		if !errors.Is(err, files.ErrNotRegular) {
			t.Errorf("%s: %v, want an error saying it is not a regular file", what, err)
		}
		return err
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: reading a named pipe blocked", what)
		return nil
	}
}
