package sae

import (
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/rise-interp/rise/internal/matmul"
)

// TestFusedStepReusesBuffers checks that, once the first step has sized its
// buffers, a step allocates only the few bytes of its goroutines, never
// buffers proportional to the batch or the SAE; ReLU and JumpReLU on both
// of their paths.
func TestFusedStepReusesBuffers(t *testing.T) {
	type run struct {
		arch Arch
		mode fusedMode
	}
	for _, tc := range []run{{Standard, fusedDense}, {Standard, fusedSparse}, {TopK, fusedAuto}, {BatchTopK, fusedAuto}, {JumpReLU, fusedDense}, {JumpReLU, fusedSparse}} {
		arch := tc.arch
		s, _ := New(arch, 64, 4096, 8)
		s.Init(1, 1, nil, 0.01)
		rng := rand.New(rand.NewPCG(1, 2))
		x := make([]float32, 128*64)
		for i := range x {
			x[i] = float32(rng.NormFloat64())
		}
		dead := make([]bool, 4096)
		for j := 0; j < 4096; j += 3 {
			dead[j] = true
		}
		fired := make([]int64, 4096)
		g := NewGradients(s)
		eng := &fusedEngine{mode: tc.mode}
		cfg := LossConfig{Sparsity: 1e-3, AuxKCoeff: 1.0 / 32}
		step := func() {
			if _, err := eng.Step(s, x, cfg, dead, g, fired); err != nil {
				t.Fatal(err)
			}
		}
		step()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		const n = 5
		for range n {
			step()
		}
		runtime.ReadMemStats(&after)
		perStep := (after.TotalAlloc - before.TotalAlloc) / n
		// One latent-sized float64 buffer is 32 KiB; goroutines cost a few
		// hundred bytes. gonum's parallel sgemm allocates its own blocks on
		// every call, so the bound is strict only under OpenBLAS.
		limit := uint64(16 << 10)
		if matmul.BLASName != "openblas" {
			limit = 256 << 10
		}
		if perStep > limit {
			t.Errorf("%s (mode %d): a step allocates %d bytes, want buffers reused (under %d with %s)", arch, tc.mode, perStep, limit, matmul.BLASName)
		}
	}
}
