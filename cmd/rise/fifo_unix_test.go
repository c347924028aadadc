//go:build unix

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rise-interp/rise/activations/label"
	"github.com/rise-interp/rise/activations/synth"
	"github.com/rise-interp/rise/internal/fifotest"
	"github.com/rise-interp/rise/sae/atlas"
	"github.com/rise-interp/rise/web/report"
)

// TestReadersRefuseNamedPipes gives each reader of a user-named JSON file a
// named pipe with no writer: rules, a Thought Anchors trace's solution, an
// atlas, explanations, a report's layer sweep and steering results, and a
// planted dump's truth.json. Each is refused at once, naming the pipe,
// instead of blocking for good (steer's own readers: TestNamedPipesRefused
// in steer).
func TestReadersRefuseNamedPipes(t *testing.T) {
	dir := t.TempDir()
	pipe := fifotest.Make(t, filepath.Join(dir, "input.json"))
	anchors := filepath.Join(dir, "anchors", "problem_1")
	writeTestFile(t, filepath.Join(anchors, label.AnchorChunksFile), "[]")
	fifotest.Make(t, filepath.Join(anchors, label.AnchorSolutionFile))
	truth := filepath.Join(dir, "dump")
	if err := os.MkdirAll(truth, 0o755); err != nil {
		t.Fatal(err)
	}
	fifotest.Make(t, filepath.Join(truth, synth.TruthFile))
	for name, read := range map[string]func() error{
		"rules":        func() error { _, err := label.LoadRules(pipe); return err },
		"anchors":      func() error { _, err := label.ReadThoughtAnchors(filepath.Dir(anchors)); return err },
		"atlas":        func() error { _, err := atlas.Load(pipe); return err },
		"explanations": func() error { _, err := atlas.LoadExplanations(pipe, nil); return err },
		"sweep":        func() error { _, err := report.LoadSweep(pipe); return err },
		"steering":     func() error { _, err := report.LoadSteering(pipe); return err },
		"truth":        func() error { _, err := synth.ReadTruth(truth); return err },
	} {
		if err := fifotest.Refused(t, name, read); err != nil && !strings.Contains(err.Error(), "named pipe") {
			t.Errorf("%s: %v does not say it is a named pipe", name, err)
		}
	}
}

// TestCommandsRefuseNamedPipes runs the rise binary with a named pipe (no
// writer) as rise label's rules and as rise report's layer sweep. The
// first used to hang rise label for good, deaf to SIGTERM; both now exit 1
// at once with one line naming the pipe. Should one hang, it gets SIGINT
// after 20 s and SIGKILL 5 s later.
func TestCommandsRefuseNamedPipes(t *testing.T) {
	bin := buildRise(t)
	dir := t.TempDir()
	traces := writeTestFile(t, filepath.Join(dir, "traces.jsonl"), testTraces)
	dump := writeSmallDump(t)
	for _, c := range []struct {
		name string
		args func(pipe string) []string
	}{
		{"label --rules", func(pipe string) []string {
			return []string{"label", "--traces", traces, "--rules", pipe, "--out", filepath.Join(dir, "labelled")}
		}},
		{"report --sweep", func(pipe string) []string {
			return []string{"report", "--data", dump, "--sweep", pipe, "--out", filepath.Join(dir, "report.html")}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			pipe := fifo(t, filepath.Join(t.TempDir(), "input.json"))
			code, stderr := runBinaryWithin(t, 20*time.Second, bin, c.args(pipe)...)
			if code != 1 || !strings.Contains(stderr, pipe) || !strings.Contains(stderr, "named pipe") || strings.Count(stderr, "\n") != 1 {
				t.Errorf("exit %d, stderr %q; want 1 and one line naming %s as a named pipe", code, stderr, pipe)
			}
		})
	}
}
