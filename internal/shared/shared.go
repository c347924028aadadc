// Package shared finds the files tests read from outside their package:
// the real data in ../shared/data beside the checkout, and the
// repository's testdata/. Paths are found from the module root, so a test
// needs no chain of ".." that breaks when its package moves.
package shared

import (
	"os"
	"path/filepath"
	"testing"
)

// Root is the repository's root: the nearest directory at or above the
// working directory (a test's package directory) holding go.mod.
func Root(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
		if filepath.Dir(d) == d {
			t.Fatalf("no go.mod at or above %s", dir)
		}
	}
}

// Data returns the path of rel under ../shared/data beside the repository,
// failing under CI (which runs with it there) and skipping the test
// elsewhere when it is missing.
func Data(t testing.TB, rel string) string {
	t.Helper()
	p := filepath.Join(Root(t), "..", "shared", "data", rel)
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is missing: CI runs with ../shared beside the checkout", p)
		}
		t.Skipf("%s is missing", p)
	}
	return p
}

// Testdata returns the path of rel under the repository's testdata/.
func Testdata(t testing.TB, rel string) string {
	t.Helper()
	return filepath.Join(Root(t), "testdata", rel)
}

// StoriesGreedy are the first 20 token ids that stories260K generates
// greedily from BOS, as ../shared/data/README.md gives them (from
// llama2.c's run.c).
var StoriesGreedy = []int{403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426, 338, 401, 396, 267, 337}

// Stories returns the paths of stories260K's checkpoint and tokenizer in
// ../shared/data (as Data), the small real model most tests run.
func Stories(t testing.TB) (checkpoint, tokenizer string) {
	t.Helper()
	return Data(t, "stories260K/stories260K.bin"), Data(t, "stories260K/tok512.bin")
}
