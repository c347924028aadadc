//go:build unix

package report

import (
	"path/filepath"
	"testing"

	"github.com/rise-interp/rise/internal/fifotest"
)

// TestNamedPipesRefused: a named pipe with no writer given to rise report
// as a layer sweep or as steering results is refused at once instead of
// blocking for good.
func TestNamedPipesRefused(t *testing.T) {
	fifo := fifotest.Make(t, filepath.Join(t.TempDir(), "sweep.json"))
	fifotest.Refused(t, "sweep", func() error { _, err := LoadSweep(fifo); return err })
	fifotest.Refused(t, "steering", func() error { _, err := LoadSteering(fifo); return err })
}
