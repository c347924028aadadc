//go:build unix

package steer

import (
	"errors"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/rise-interp/rise/internal/files"
	"github.com/rise-interp/rise/internal/inputerr"
	"github.com/rise-interp/rise/steer/model"
)

// TestNamedPipesRefused: a named pipe with no writer given as a steering
// spec, a prompts file, a vector, a llama2.c checkpoint or its tokenizer is
// refused at once, naming what it is, instead of blocking the open forever.
func TestNamedPipesRefused(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "pipe")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	for name, read := range map[string]func() error{
		"spec":       func() error { _, err := ReadSpec(fifo); return err },
		"prompts":    func() error { _, err := ReadPrompts(fifo); return err },
		"vector":     func() error { _, err := ReadVectorsNpyFile(fifo); return err },
		"confidence": func() error { _, err := LoadDirection("confidence:" + fifo); return err },
		"checkpoint": func() error { _, err := model.LoadLlama2C(fifo); return err },
		"tokenizer":  func() error { _, err := model.LoadLlama2CTokenizer(fifo, 512); return err },
	} {
		done := make(chan error, 1)
		go func() { done <- read() }()
		select {
		case err := <-done:
			if !errors.Is(err, files.ErrNotRegular) {
				t.Errorf("%s: %v, want an error saying it is not a regular file", name, err)
			}
			if name == "spec" || name == "prompts" || name == "confidence" {
				if !inputerr.Is(err) {
					t.Errorf("%s: %v is not marked as the caller's", name, err)
				}
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: reading a named pipe blocked", name)
		}
	}
}
