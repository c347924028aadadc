//go:build unix

package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rise-interp/rise/activations"
	"github.com/rise-interp/rise/internal/ziplayout/ziptest"
)

// TestInspectSpecialFiles runs the rise binary on dumps with a named pipe
// (no writer) as a shard, manifest.json, steps.jsonl, a bare .npy and an
// .npz, and on /dev/zero as the steps.jsonl beside a .npy. Each used to
// hang rise inspect (or read forever), deaf to SIGINT and SIGTERM; each now
// exits 1 at once with one line naming the file and what it is. Should one
// hang, it gets SIGINT after 20 s and SIGKILL 5 s later.
func TestInspectSpecialFiles(t *testing.T) {
	bin := buildRise(t)
	for _, c := range []struct {
		name  string
		setup func(t *testing.T, dir string) (arg, file string)
		want  string
	}{
		{"shard", func(t *testing.T, dir string) (string, string) {
			return dir, fifo(t, filepath.Join(dir, "layer12-00000.npy"))
		}, "a named pipe"},
		{"manifest.json", func(t *testing.T, dir string) (string, string) {
			return dir, fifo(t, filepath.Join(dir, "manifest.json"))
		}, "a named pipe"},
		{"steps.jsonl", func(t *testing.T, dir string) (string, string) {
			return dir, fifo(t, filepath.Join(dir, "steps.jsonl"))
		}, "a named pipe"},
		{".npy", func(t *testing.T, dir string) (string, string) {
			p := fifo(t, filepath.Join(dir, "acts.npy"))
			return p, p
		}, "a named pipe"},
		{".npz", func(t *testing.T, dir string) (string, string) {
			p := fifo(t, filepath.Join(dir, "acts.npz"))
			return p, p
		}, "a named pipe"},
		{"/dev/zero as steps.jsonl", func(t *testing.T, dir string) (string, string) {
			p := filepath.Join(dir, "steps.jsonl")
			os.Remove(p)
			if err := os.Symlink("/dev/zero", p); err != nil {
				t.Fatal(err)
			}
			return filepath.Join(dir, "layer12-00000.npy"), p
		}, "a character device"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := copyTiny(t)
			arg, file := c.setup(t, dir)
			code, stderr := runBinaryWithin(t, 20*time.Second, bin, "inspect", "--quick", arg)
			if code != 1 || !strings.Contains(stderr, "rise inspect: "+file+": expected ") || !strings.HasSuffix(stderr, "found "+c.want+"\n") || strings.Count(stderr, "\n") != 1 {
				t.Errorf("exit %d, stderr %q; want 1 and one line naming %s as %s", code, stderr, file, c.want)
			}
		})
	}
}

func fifo(t *testing.T, path string) string {
	t.Helper()
	os.Remove(path)
	if err := syscall.Mkfifo(path, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// runBinaryWithin runs bin with args and returns its exit status and
// stderr; a run still going after limit gets SIGINT, then SIGKILL, and
// fails the test.
func runBinaryWithin(t *testing.T, limit time.Duration, bin string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
		return cmd.ProcessState.ExitCode(), stderr.String()
	case <-time.After(limit):
	}
	cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-done:
		t.Fatalf("rise %s ran for %s; it stopped on SIGINT", strings.Join(args, " "), limit)
	case <-time.After(5 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("rise %s ran for %s and ignored SIGINT", strings.Join(args, " "), limit)
	}
	return 0, ""
}

// TestInspectStopsWhenCancelled runs rise inspect --quick, which reads
// only headers and steps.jsonl, with its context already cancelled, as
// after Ctrl-C: it stops, interrupted, instead of reading on.
func TestInspectStopsWhenCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var out, errb strings.Builder
	code := run(ctx, []string{"inspect", "--quick", tinyDump}, &out, &errb)
	if code != 1 || errb.String() != "rise inspect: interrupted\n" {
		t.Errorf("exit %d, stderr %q; want 1 and \"interrupted\"", code, errb.String())
	}
}

// TestInspectLinksAndBombs gives rise inspect a dump whose shard is a
// symbolic link to a copy outside it, and an .npz whose six members share
// one deflate stream: both exit 1 with one line naming the file.
func TestInspectLinksAndBombs(t *testing.T) {
	dir := copyTiny(t)
	shard := filepath.Join(dir, "layer12-00000.npy")
	outside := filepath.Join(t.TempDir(), "elsewhere.npy")
	if err := os.Rename(shard, outside); err != nil {
		t.Fatal(err)
	}
	os.Symlink(outside, shard)
	code, _, stderr := runRise(t, "inspect", dir)
	if code != 1 || !strings.Contains(stderr, shard+": a link to "+outside+", outside the dump directory") {
		t.Errorf("a shard linked from outside: exit %d, %q", code, stderr)
	}

	bomb := filepath.Join(t.TempDir(), "bomb.npz")
	one := activations.EncodeNpy(make([]float32, 1<<18), 1<<12, 64)
	os.WriteFile(bomb, ziptest.Overlapping([]string{"l0.npy", "l1.npy", "l2.npy", "l3.npy", "l4.npy", "l5.npy"}, one), 0o644)
	code, _, stderr = runRise(t, "inspect", bomb)
	if code != 1 || !strings.Contains(stderr, bomb+": members \"l0.npy\" and") || strings.Count(stderr, "\n") != 1 {
		t.Errorf("an .npz bomb: exit %d, %q", code, stderr)
	}
}
