//go:build unix

package sae

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rise-interp/rise/internal/npytest"
	"github.com/rise-interp/rise/internal/ziplayout/ziptest"
)

// sparseSafetensors writes a safetensors file whose header declares the
// given F32 tensors (in order) and whose data is a hole: a file of any
// size that takes no disk.
func sparseSafetensors(t *testing.T, path string, names []string, shapes [][]int) {
	t.Helper()
	h := map[string]any{}
	off := int64(0)
	for i, name := range names {
		n := int64(4)
		for _, d := range shapes[i] {
			n *= int64(d)
		}
		h[name] = map[string]any{"dtype": "F32", "shape": shapes[i], "data_offsets": []int64{off, off + n}}
		off += n
	}
	hb, _ := json.Marshal(h)
	for (8+len(hb))%8 != 0 {
		hb = append(hb, ' ')
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.Write(binary.LittleEndian.AppendUint64(nil, uint64(len(hb))))
	f.Write(hb)
	if err := f.Truncate(int64(8+len(hb)) + off); err != nil {
		t.Skipf("the file system cannot hold a sparse file of %d bytes: %v", off, err)
	}
}

// TestLoadRefusesSAEBeyondMemory loads SAEs whose cfg.json and tensors agree
// on d_in 16 and d_sae 10^9, the tensors in a 132 GB sparse file: SAELens
// and sparsify directories both fail with one line before anything is
// allocated.
func TestLoadRefusesSAEBeyondMemory(t *testing.T) {
	limitMemory(t, 8<<30)
	const din, dsae = 16, 1_000_000_000
	dir := t.TempDir()
	lens := filepath.Join(dir, "lens")
	os.Mkdir(lens, 0o755)
	sparseSafetensors(t, filepath.Join(lens, SAELensWeightsFile), []string{"W_dec", "W_enc", "b_dec", "b_enc"},
		[][]int{{dsae, din}, {din, dsae}, {din}, {dsae}})
	cfg, _ := json.Marshal(map[string]any{"architecture": "standard", "d_in": din, "d_sae": dsae, "dtype": "float32"})
	os.WriteFile(filepath.Join(lens, SAELensConfigFile), cfg, 0o644)
	_, err := LoadAny(lens)
	if err == nil || !strings.Contains(err.Error(), "the tensors of an SAE with d_in 16 and d_sae 1000000000") || !strings.Contains(err.Error(), "need 122.9 GiB of memory, but 8.0 GiB is available") {
		t.Errorf("SAELens: %v", err)
	}

	sp := filepath.Join(dir, "layers.6")
	os.Mkdir(sp, 0o755)
	sparseSafetensors(t, filepath.Join(sp, SparsifyWeightsFile), []string{"W_dec", "b_dec", "encoder.bias", "encoder.weight"},
		[][]int{{dsae, din}, {din}, {dsae}, {dsae, din}})
	cfg, _ = json.Marshal(map[string]any{"activation": "topk", "num_latents": dsae, "k": 32, "d_in": din})
	os.WriteFile(filepath.Join(sp, "cfg.json"), cfg, 0o644)
	_, err = LoadAny(sp)
	if err == nil || !strings.Contains(err.Error(), "the tensors of an SAE with d_in 16 and d_sae 1000000000") || !strings.Contains(err.Error(), "of memory, but 8.0 GiB is available") {
		t.Errorf("sparsify: %v", err)
	}
}

// TestGemmaScopeArchiveChecks imports a params.npz whose five arrays share
// one deflate stream, and one whose arrays (zeros, deflated to almost
// nothing) declare more float32 values than memory holds: both are refused
// before any array is read.
func TestGemmaScopeArchiveChecks(t *testing.T) {
	dir := t.TempDir()
	bomb := filepath.Join(dir, "bomb", GemmaScopeFile)
	os.Mkdir(filepath.Dir(bomb), 0o755)
	one := npytest.File("<f4", false, "(64, 16384)", make([]byte, 64*16384*4))
	os.WriteFile(bomb, ziptest.Overlapping([]string{"W_enc.npy", "W_dec.npy", "b_enc.npy", "b_dec.npy", "threshold.npy"}, one), 0o644)
	_, err := LoadAny(bomb)
	if err == nil || !strings.Contains(err.Error(), "overlap") {
		t.Errorf("members sharing a stream: %v", err)
	}

	limitMemory(t, 4<<20)
	const din, dsae = 64, 16384 // 2 × 4 MiB of weights
	big := filepath.Join(dir, "big", GemmaScopeFile)
	os.Mkdir(filepath.Dir(big), 0o755)
	writeZip(t, big, true, map[string][]byte{
		"W_enc.npy":     npytest.File("<f4", false, fmt.Sprintf("(%d, %d)", din, dsae), make([]byte, din*dsae*4)),
		"W_dec.npy":     npytest.File("<f4", false, fmt.Sprintf("(%d, %d)", dsae, din), make([]byte, din*dsae*4)),
		"b_enc.npy":     npytest.File("<f4", false, fmt.Sprintf("(%d,)", dsae), make([]byte, dsae*4)),
		"b_dec.npy":     npytest.File("<f4", false, fmt.Sprintf("(%d,)", din), make([]byte, din*4)),
		"threshold.npy": npytest.File("<f4", false, fmt.Sprintf("(%d,)", dsae), make([]byte, dsae*4)),
	})
	_, err = LoadAny(big)
	if err == nil || !strings.Contains(err.Error(), big+": its arrays as float32 need 8.1 MiB of memory, but 4.0 MiB is available") {
		t.Errorf("arrays beyond memory: %v", err)
	}
}

// TestSAEFilesMustBeRegular puts named pipes (with no writer) in the place
// of cfg.json, the safetensors weights, a Gemma Scope params.npz and a
// training checkpoint: each is refused at once, naming the file.
func TestSAEFilesMustBeRegular(t *testing.T) {
	within := func(t *testing.T, f func() error) error {
		t.Helper()
		done := make(chan error, 1)
		go func() { done <- f() }()
		select {
		case err := <-done:
			return err
		case <-time.After(10 * time.Second):
			t.Fatal("still waiting after 10 s")
			return nil
		}
	}
	s := testSAE(t, TopK, 4, 8, 2, 1)
	for _, name := range []string{SAELensConfigFile, SAELensWeightsFile} {
		dir := t.TempDir()
		if err := Save(dir, s, SaveOptions{}); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name)
		os.Remove(p)
		if err := syscall.Mkfifo(p, 0o644); err != nil {
			t.Fatal(err)
		}
		if name == SAELensWeightsFile {
			// LoadAny looks for a regular weights file; Load is asked directly.
			if err := within(t, func() error { _, err := Load(dir); return err }); err == nil || !strings.Contains(err.Error(), p+": expected a regular file, found a named pipe") {
				t.Errorf("%s as a named pipe: %v", name, err)
			}
			continue
		}
		if err := within(t, func() error { _, err := LoadAny(dir); return err }); err == nil || !strings.Contains(err.Error(), p+": expected a regular file, found a named pipe") {
			t.Errorf("%s as a named pipe: %v", name, err)
		}
	}
	npz := filepath.Join(t.TempDir(), "params.npz")
	syscall.Mkfifo(npz, 0o644)
	if err := within(t, func() error { _, err := LoadAny(npz); return err }); err == nil || !strings.Contains(err.Error(), npz+": expected a regular file, found a named pipe") {
		t.Errorf("params.npz as a named pipe: %v", err)
	}

	layer, _ := plantedLayer(t, 200, 8, 16)
	ck := filepath.Join(t.TempDir(), "training.ckpt")
	syscall.Mkfifo(ck, 0o644)
	cfg := TrainConfig{Arch: TopK, K: 2, Width: 16, Steps: 5, Checkpoint: ck, Resume: true}
	if err := within(t, func() error { _, _, err := Train(context.Background(), layer, cfg, nil); return err }); err == nil || !strings.Contains(err.Error(), ck+": expected a regular file, found a named pipe") {
		t.Errorf("a checkpoint that is a named pipe: %v", err)
	}
}
