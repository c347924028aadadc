package atlas

import (
	"path/filepath"
	"testing"

	"github.com/rise-interp/rise/activations"
)

// writeDump writes a one-layer dump of the rows (d values each) and their
// steps into a temporary directory and opens it as openDump does.
func writeDump(t testing.TB, model string, d int, rows []float32, steps []activations.Step) (*activations.Dump, []activations.Step) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), model)
	w, err := activations.Create(dir, activations.WriterOptions{Model: model, DModel: d, Layers: []int{0}})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteRows(0, rows); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteSteps(steps...); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return openDump(t, dir)
}

// openDump opens the dump at path, closed when the test ends, and reads its
// steps.
func openDump(t testing.TB, path string) (*activations.Dump, []activations.Step) {
	t.Helper()
	d, err := activations.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	steps, err := activations.ReadSteps(d.StepsPath)
	if err != nil {
		t.Fatal(err)
	}
	return d, steps
}
