package atlas

import (
	"testing"

	"github.com/rise-interp/rise/activations"
)

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
