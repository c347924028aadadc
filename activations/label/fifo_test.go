//go:build unix

package label

import (
	"path/filepath"
	"testing"

	"github.com/rise-interp/rise/internal/fifotest"
)

// TestNamedPipesRefused: a named pipe with no writer given as the rules
// file, or standing as a Thought Anchors trace's solution, is refused at
// once instead of blocking rise label for good.
func TestNamedPipesRefused(t *testing.T) {
	dir := t.TempDir()
	rules := fifotest.Make(t, filepath.Join(dir, "rules.json"))
	anchors := filepath.Join(dir, "anchors")
	writeFile(t, filepath.Join(anchors, "problem_1", AnchorChunksFile), "[]")
	fifotest.Make(t, filepath.Join(anchors, "problem_1", AnchorSolutionFile))
	fifotest.Refused(t, "rules", func() error { _, err := LoadRules(rules); return err })
	fifotest.Refused(t, "anchors", func() error { _, err := ReadThoughtAnchors(anchors); return err })
}
