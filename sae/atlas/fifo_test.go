//go:build unix

package atlas

import (
	"path/filepath"
	"testing"

	"github.com/rise-interp/rise/internal/fifotest"
)

// TestNamedPipesRefused: a named pipe with no writer given as an atlas or
// an explanations file is refused at once instead of blocking for good.
func TestNamedPipesRefused(t *testing.T) {
	fifo := fifotest.Make(t, filepath.Join(t.TempDir(), "atlas.json"))
	fifotest.Refused(t, "atlas", func() error { _, err := Load(fifo); return err })
	fifotest.Refused(t, "explanations", func() error { _, err := LoadExplanations(fifo, nil); return err })
}
