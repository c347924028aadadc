//go:build unix

package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

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
