package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/rise-interp/rise/activations"
)

// buildRise builds the rise binary for tests that run it as a process.
func buildRise(t *testing.T) string {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("SIGKILL tests need a Unix")
	}
	bin := filepath.Join(t.TempDir(), "rise")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// buildRiseWithDump builds the rise binary, as buildRise does, and runs its
// synth with the flags synthFlags to write a planted dump named data into
// dir, a fresh temporary directory; it returns the binary, dir and data.
func buildRiseWithDump(t *testing.T, synthFlags ...string) (bin, dir, data string) {
	t.Helper()
	bin = buildRise(t)
	dir = t.TempDir()
	data = filepath.Join(dir, "data")
	if out, err := exec.Command(bin, append([]string{"synth", "--out", data}, synthFlags...)...).CombinedOutput(); err != nil {
		t.Fatalf("synth: %v %s", err, out)
	}
	return bin, dir, data
}

// killWhen starts cmd and SIGKILLs it once ready reports true (or after
// limit), returning whether it was killed before finishing.
func killWhen(t *testing.T, cmd *exec.Cmd, ready func() bool, limit time.Duration) bool {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		select {
		case <-done:
			return false
		case <-time.After(20 * time.Millisecond):
		}
		if ready() {
			break
		}
	}
	cmd.Process.Signal(syscall.SIGKILL)
	<-done
	return true
}

// TestSIGKILL kills rise with SIGKILL in the middle of training, of
// writing a dump and of writing an atlas: what is left is the old complete
// output or nothing, never half a file, and a training run resumed after
// the kill ends at the very SAE an unbroken run gives.
func TestSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("SIGKILL test skipped in -short mode")
	}
	bin, dir, data := buildRiseWithDump(t, "--rows", "20000", "--d-model", "64", "--features", "128")
	train := func(out string, extra ...string) *exec.Cmd {
		return exec.Command(bin, append([]string{"train", "--data", data, "--arch", "topk", "--k", "8", "--width", "256",
			"--steps", "6000", "--batch", "256", "--checkpoint-every", "200", "--out", out}, extra...)...)
	}
	whole := filepath.Join(dir, "whole")
	if out, err := train(whole).CombinedOutput(); err != nil {
		t.Fatalf("train: %v %s", err, out)
	}
	broken := filepath.Join(dir, "broken")
	ck := filepath.Join(broken, "training.ckpt")
	killed := killWhen(t, train(broken), func() bool {
		_, err := os.Stat(ck)
		return err == nil
	}, time.Minute)
	if !killed {
		t.Fatal("training finished before it could be killed")
	}
	if _, err := os.Stat(filepath.Join(broken, "sae_weights.safetensors")); err == nil {
		t.Error("a killed run left SAE weights behind")
	}
	if out, err := train(broken, "--resume").CombinedOutput(); err != nil {
		t.Fatalf("train --resume: %v %s", err, out)
	}
	a, _ := os.ReadFile(filepath.Join(whole, "sae_weights.safetensors"))
	b, _ := os.ReadFile(filepath.Join(broken, "sae_weights.safetensors"))
	if len(a) == 0 || !bytes.Equal(a, b) {
		t.Errorf("the resumed SAE (%d bytes) differs from the unbroken run's (%d bytes)", len(b), len(a))
	}

	// A dump replaced with --force and killed midway: the old one stays.
	old, _ := activations.Open(data)
	oldRows := old.Rows
	old.Close()
	big := exec.Command(bin, "synth", "--out", data, "--rows", "3000000", "--d-model", "256", "--features", "512", "--force")
	if !killWhen(t, big, func() bool { return false }, 1500*time.Millisecond) {
		t.Fatal("the big synth finished before it could be killed")
	}
	d, err := activations.Open(data)
	if err != nil {
		t.Fatalf("after the kill the dump does not open: %v", err)
	}
	if d.Rows != oldRows {
		t.Errorf("after the kill the dump has %d rows, the old one %d", d.Rows, oldRows)
	}
	d.Close()

	// An atlas killed midway: atlas.json is absent or whole.
	atlasOut := filepath.Join(dir, "atlas.json")
	killWhen(t, exec.Command(bin, "atlas", "--sae", whole, "--data", data, "--out", atlasOut), func() bool { return false }, 300*time.Millisecond)
	if b, err := os.ReadFile(atlasOut); err == nil && !json.Valid(b) {
		t.Error("a killed atlas left half an atlas.json")
	}
}
