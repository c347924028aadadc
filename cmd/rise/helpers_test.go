package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/rise-interp/rise/activations"
)

// runRise runs the command line in-process and returns its exit status and
// output.
func runRise(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

// mustRise runs the command line in-process, as runRise, and fails the
// test unless it exits 0; it returns the standard output.
func mustRise(t *testing.T, args ...string) string {
	t.Helper()
	code, stdout, stderr := runRise(t, args...)
	if code != 0 {
		t.Fatalf("%s: exit %d: %s", args[0], code, stderr)
	}
	return stdout
}

// synthAndTrain writes a planted dump to dir/dump with rise synth and the
// flags synthFlags, trains an SAE on it into dir/sae with rise train and the
// flags trainFlags, and returns the two paths; it fails the test unless both
// commands exit 0.
func synthAndTrain(t *testing.T, dir string, synthFlags, trainFlags []string) (dump, saeDir string) {
	t.Helper()
	dump, saeDir = filepath.Join(dir, "dump"), filepath.Join(dir, "sae")
	mustRise(t, append([]string{"synth", "--out", dump}, synthFlags...)...)
	mustRise(t, append(append([]string{"train", "--data", dump}, trainFlags...), "--out", saeDir)...)
	return dump, saeDir
}

// torchReference returns the path of the PyTorch reference script rel (a
// path from the repository root) as seen from this package, and skips the
// test in -short mode, when the script is missing, or when no python3 with
// torch is on this machine.
func torchReference(t *testing.T, rel string) string {
	t.Helper()
	if testing.Short() {
		t.Skip("starting PyTorch takes seconds")
	}
	script := filepath.Join("..", "..", rel)
	if _, err := os.Stat(script); err != nil {
		t.Skipf("no PyTorch reference at %s", script)
	}
	if _, _, err := findTorch(context.Background(), script, rel); err != nil {
		t.Skip(err)
	}
	return script
}

// writeOneHotSpec writes into dir v.npy, a vector of width dims that is 1
// at hot and 0 elsewhere, and spec.json holding spec, a steering spec that
// reads it as npy:v.npy; it returns the spec's path.
func writeOneHotSpec(t *testing.T, dir string, dims, hot int, spec string) string {
	t.Helper()
	v := make([]float32, dims)
	v[hot] = 1
	if err := os.WriteFile(filepath.Join(dir, "v.npy"), activations.EncodeNpy(v, 1, dims), 0o644); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "spec.json")
	if err := os.WriteFile(path, []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
