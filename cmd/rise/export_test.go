package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestExportLayers: a GGUF control vector for layer 100000, which llama.cpp
// drops without a word on any model that has fewer blocks, used to be
// written when no --model was given. A GGUF now needs --model or --layers,
// and a layer beyond --layers is refused; .npy, which has no layers, needs
// neither.
func TestExportLayers(t *testing.T) {
	dir := t.TempDir()
	spec := writeOneHotSpec(t, dir, 16, 3, `{"vectors": [{"source": "npy:v.npy", "layer": 100000, "op": "add", "strength": 1, "positions": "all"}]}`)
	gguf := filepath.Join(dir, "cv.gguf")
	code, _, stderr := runRise(t, "export", "--steer", spec, "--format", "gguf", "--out", gguf)
	if code != 2 || !strings.Contains(stderr, "needs --model or --layers N") {
		t.Errorf("gguf without --model or --layers: exit %d, %q", code, stderr)
	}
	code, _, stderr = runRise(t, "export", "--steer", spec, "--format", "gguf", "--out", gguf, "--layers", "28")
	if code != 1 || !strings.Contains(stderr, "layer: expected a block from 0 to 27, found 100000") {
		t.Errorf("gguf with layer 100000 of 28: exit %d, %q", code, stderr)
	}
	if _, err := os.Stat(gguf); err == nil {
		t.Error("a refused export wrote the GGUF")
	}
	code, _, stderr = runRise(t, "export", "--steer", spec, "--format", "gguf", "--out", gguf, "--layers", "-1")
	if code != 2 || !strings.Contains(stderr, "--layers: expected the model's number of blocks") {
		t.Errorf("--layers -1: exit %d, %q", code, stderr)
	}
	os.WriteFile(spec, []byte(`{"vectors": [{"source": "npy:v.npy", "layer": 20, "op": "add", "strength": 1, "positions": "all"}]}`), 0o644)
	if code, stdout, stderr := runRise(t, "export", "--steer", spec, "--format", "gguf", "--out", gguf, "--layers", "28"); code != 0 || !strings.Contains(stdout, "layers 20") {
		t.Errorf("gguf with layer 20 of 28: exit %d, %q %q", code, stdout, stderr)
	}
	if code, _, stderr := runRise(t, "export", "--steer", spec, "--format", "npy", "--out", filepath.Join(dir, "v2.npy")); code != 0 {
		t.Errorf("npy: exit %d, %q", code, stderr)
	}
}
