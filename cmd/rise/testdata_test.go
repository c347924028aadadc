package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// tinyDump is the project's committed fixture, made by
//
//	rise synth --out testdata/tiny --rows 400 --d-model 16 --features 32 --seed 7
//
// ("make testdata" remakes it).
var tinyDump = filepath.Join("..", "..", "testdata", "tiny")

// TestTinyFixtureIsCurrent remakes the fixture and compares it byte for
// byte: a change to the generator or the dump format must come with a new
// fixture, made on purpose.
func TestTinyFixtureIsCurrent(t *testing.T) {
	out := filepath.Join(t.TempDir(), "tiny")
	mustRise(t, "synth", "--out", out, "--rows", "400", "--d-model", "16", "--features", "32", "--seed", "7")
	entries, err := os.ReadDir(tinyDump)
	if err != nil {
		t.Fatal(err)
	}
	made, _ := os.ReadDir(out)
	if len(made) != len(entries) {
		t.Errorf("synth writes %d files, the fixture has %d", len(made), len(entries))
	}
	for _, e := range entries {
		want, _ := os.ReadFile(filepath.Join(tinyDump, e.Name()))
		got, err := os.ReadFile(filepath.Join(out, e.Name()))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s differs from a fresh 'rise synth' (run 'make testdata' if the change is meant)", e.Name())
		}
	}
}

// TestInspectGolden holds the output of "rise inspect" on the fixture.
func TestInspectGolden(t *testing.T) {
	code, out, errOut := runRise(t, "inspect", "--steps", "8", tinyDump)
	if code != 0 {
		t.Fatalf("inspect: exit %d: %s", code, errOut)
	}
	golden := filepath.Join("testdata", "inspect-tiny.golden")
	if *update {
		os.MkdirAll("testdata", 0o755)
		if err := os.WriteFile(golden, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./cmd/rise -run InspectGolden -update to make it)", err)
	}
	if out != string(want) {
		t.Errorf("rise inspect output changed (run with -update if meant):\n--- got\n%s\n--- want\n%s", out, want)
	}
}
