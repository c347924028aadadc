//go:build unix

package synth

import (
	"path/filepath"
	"testing"

	"github.com/rise-interp/rise/internal/fifotest"
)

// TestNamedPipesRefused: a named pipe with no writer as a planted dump's
// truth.json is refused at once instead of blocking for good.
func TestNamedPipesRefused(t *testing.T) {
	dir := t.TempDir()
	fifotest.Make(t, filepath.Join(dir, TruthFile))
	fifotest.Refused(t, "truth", func() error { _, err := ReadTruth(dir); return err })
}
