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
