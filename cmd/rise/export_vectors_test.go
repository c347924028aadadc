package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/rise-interp/rise/internal/npytest"
	"github.com/rise-interp/rise/steer"
)

// TestExportOneDimensionalVector: a vector saved with np.save(path, v),
// v of shape (d_model,), exports as a GGUF control vector (it used to be
// refused: "expected two dimensions").
func TestExportOneDimensionalVector(t *testing.T) {
	dir := t.TempDir()
	// A float32 .npy of shape (4,): 0, 3, 0, 4.
	npy := npytest.File("<f4", false, "(4,)", npytest.Float32s(0, 3, 0, 4))
	if err := os.WriteFile(filepath.Join(dir, "v.npy"), npy, 0o644); err != nil {
		t.Fatal(err)
	}
	spec := filepath.Join(dir, "spec.json")
	os.WriteFile(spec, []byte(`{"vectors": [{"source": "npy:v.npy", "layer": 1, "strength": 10}]}`), 0o644)
	gguf := filepath.Join(dir, "cv.gguf")
	if code, stdout, stderr := runRise(t, "export", "--steer", spec, "--format", "gguf", "--layers", "4", "--out", gguf); code != 0 {
		t.Fatalf("export: exit %d: %s %s", code, stdout, stderr)
	}
	data, err := os.ReadFile(gguf)
	if err != nil {
		t.Fatal(err)
	}
	cv, err := steer.ReadGGUFControlVector(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if got := cv.Layers[1]; len(got) != 4 || got[0] != 0 || got[1] != 6 || got[2] != 0 || got[3] != 8 {
		t.Errorf("direction.1 = %v, want 10 × (0, 0.6, 0, 0.8)", got)
	}
}
