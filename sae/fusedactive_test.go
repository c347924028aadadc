package sae

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/rise-interp/rise/internal/bf16"
)

// namedEngine gives an engine a name of its own, so that an agreement
// failure says which of two fused paths it came from.
type namedEngine struct {
	Engine
	name string
}

func (n namedEngine) Name() string { return n.name }

// TestFusedActivePathAgrees holds the fused engine's path over active
// entries (forced on every step, whatever the density) to the graph
// engine's automatic gradients and to the fused engine's dense path, on
// every agreement case. TopK and BatchTopK take their own sparse path
// either way.
func TestFusedActivePathAgrees(t *testing.T) {
	active := namedEngine{&fusedEngine{mode: fusedSparse}, "fused-active"}
	t.Run("graph", func(t *testing.T) { engineAgreement(t, active, NewGraphEngine()) })
	t.Run("dense", func(t *testing.T) {
		engineAgreement(t, active, namedEngine{&fusedEngine{mode: fusedDense}, "fused-dense"})
	})
}

// sparseSAE draws a ReLU or JumpReLU SAE whose encoder bias is shifted
// down so that about the given share of entries fires, with rows and
// latents that have no active entry at all.
func sparseSAE(t *testing.T, arch Arch, dIn, dSae, rows int, shift float32, seed uint64) (*SAE, []float32) {
	t.Helper()
	s, x, _ := randomSAE{arch: arch, dIn: dIn, dSae: dSae, rows: rows, centre: true, scale: 1, stream: 7,
		decNorm: 1, encNoise: 0.2, bEnc: 0.2, bDec: 0.3, thresholds: true}.make(t, seed)
	for j := range s.BEnc {
		s.BEnc[j] -= shift
	}
	return s, x
}

// TestFusedActivePathSparse compares the two fused paths and the graph
// engine where few entries fire (the regime the active path is for): some
// rows and latents have none, and JumpReLU's kernel window holds entries
// that do not fire.
func TestFusedActivePathSparse(t *testing.T) {
	const tol = 1e-3
	for _, arch := range []Arch{Standard, JumpReLU} {
		for _, shift := range []float32{1.5, 3} {
			t.Run(fmt.Sprintf("%s/shift=%g", arch, shift), func(t *testing.T) {
				s, x := sparseSAE(t, arch, 24, 96, 20, shift, 3)
				cfg := LossConfig{Sparsity: 0.7, Bandwidth: 0.3}
				engines := []Engine{&fusedEngine{mode: fusedSparse}, &fusedEngine{mode: fusedDense}, NewGraphEngine()}
				var gs []*Gradients
				var ls []Loss
				var fs [][]int64
				for _, eng := range engines {
					g, f := NewGradients(s), make([]int64, s.DSae)
					l, err := eng.Step(s, x, cfg, nil, g, f)
					if err != nil {
						t.Fatal(err)
					}
					gs, ls, fs = append(gs, g), append(ls, l), append(fs, f)
				}
				if l0 := ls[1].L0; !(l0 > 0 && l0 < 0.3*float64(s.DSae)) {
					t.Fatalf("L0 %v: expected a few active latents per row out of %d", l0, s.DSae)
				}
				emptyRows := 0
				for r := range 20 {
					if engines[0].(*fusedEngine).rowStart[r] == engines[0].(*fusedEngine).rowStart[r+1] {
						emptyRows++
					}
				}
				t.Logf("L0 %.2f of %d, %d rows without entries", ls[1].L0, s.DSae, emptyRows)
				for i, name := range []string{"dense", "graph"} {
					ref := gs[i+1]
					for _, c := range []struct {
						n    string
						a, b []float32
					}{{"W_enc", gs[0].WEnc, ref.WEnc}, {"W_dec", gs[0].WDec, ref.WDec}, {"b_enc", gs[0].BEnc, ref.BEnc}, {"b_dec", gs[0].BDec, ref.BDec}, {"log θ", gs[0].LogThreshold, ref.LogThreshold}} {
						if e := relErr(c.a, c.b); !(e < tol) {
							t.Errorf("∂/∂%s: relative error %.3g against %s", c.n, e, name)
						}
					}
					for _, v := range [][2]float64{{ls[0].Total, ls[i+1].Total}, {ls[0].Sparsity, ls[i+1].Sparsity}, {ls[0].L0, ls[i+1].L0}} {
						if e := relErr([]float32{float32(v[0])}, []float32{float32(v[1])}); !(e < tol) {
							t.Errorf("loss term %v against %s: %v", v[0], name, v[1])
						}
					}
					for j := range fs[0] {
						if fs[0][j] != fs[i+1][j] {
							t.Fatalf("fired[%d] = %d, %s says %d", j, fs[0][j], name, fs[i+1][j])
						}
					}
				}
			})
		}
	}
}

// TestFusedPicksPathByDensity checks that the automatic mode runs the dense
// products on a dense step and the active entries on a sparse one.
func TestFusedPicksPathByDensity(t *testing.T) {
	for _, tc := range []struct {
		shift      float32
		wantSparse bool
	}{{0, false}, {4, true}} {
		s, x := sparseSAE(t, Standard, 32, 256, 16, tc.shift, 1)
		e := &fusedEngine{}
		l, err := e.Step(s, x, LossConfig{Sparsity: 0.1}, nil, NewGradients(s), nil)
		if err != nil {
			t.Fatal(err)
		}
		if e.lastSparse != tc.wantSparse {
			t.Errorf("density %.3f: sparse path %v, want %v (switch at %.2f)", l.L0/256, e.lastSparse, tc.wantSparse, sparseMaxDensity)
		}
	}
}

// TestFusedSwitchByPrecision: with float32 dense products a step with a
// quarter of its entries active runs over the active entries (the switch
// sits at sparseMaxDensity, 30%); with bfloat16 ones, twice as fast, it
// runs dense (sparseMaxDensityBF16, 18%).
func TestFusedSwitchByPrecision(t *testing.T) {
	const m = 256
	var s *SAE
	var x []float32
	var density float64
	for shift := float32(0); shift < 3; shift += 0.02 {
		s, x = sparseSAE(t, Standard, 32, m, 64, shift, 1)
		probe := &fusedEngine{mode: fusedDense}
		l, err := probe.Step(s, x, LossConfig{Sparsity: 0.1}, nil, NewGradients(s), nil)
		if err != nil {
			t.Fatal(err)
		}
		if density = l.L0 / m; density <= 0.26 {
			break
		}
	}
	if density < 0.2 || density > 0.26 {
		t.Fatalf("no shift gives a density between 0.2 and 0.26 (last %.3f)", density)
	}
	engines := []*fusedEngine{{}}
	if bf16.Native() {
		engines = append(engines, &fusedEngine{bf16: true})
	}
	for _, e := range engines {
		if _, err := e.Step(s, x, LossConfig{Sparsity: 0.1}, nil, NewGradients(s), nil); err != nil {
			t.Fatal(err)
		}
		if want := !e.bf16; e.lastSparse != want {
			t.Errorf("bfloat16 %v, %.1f%% active: over active entries %v, want %v", e.bf16, 100*density, e.lastSparse, want)
		}
	}
}

// BenchmarkFusedReLUDensity times one fused ReLU step at the RISE recipe's
// size (d_in 1536, d_sae 2048, batch 1024) by path and share of active
// entries, set through the encoder bias. Its firings are spread evenly
// over the latents, a real run's are not: sparseMaxDensity sits below the
// crossing it shows, where whole runs put it.
func BenchmarkFusedReLUDensity(b *testing.B) {
	const d, m, rows = 1536, 2048, 1024
	s, _ := New(Standard, d, m, 0)
	s.Init(1, 0.1, nil, 0)
	rng := rand.New(rand.NewPCG(1, 2))
	x := make([]float32, rows*d)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	// pre = x·W_enc with W_enc = W_decᵀ (rows of norm 0.1): each entry is
	// about N(0, 0.1²), so b_enc = -0.1·z fires Φ(-z) of them.
	for _, tc := range []struct {
		density float64
		z       float32
	}{{0.02, 2.054}, {0.05, 1.645}, {0.10, 1.282}, {0.15, 1.036}, {0.18, 0.915}, {0.20, 0.842}, {0.22, 0.772}, {0.25, 0.674}, {0.30, 0.524}, {0.40, 0.253}} {
		for j := range s.BEnc {
			s.BEnc[j] = -0.1 * tc.z
		}
		for _, mode := range []fusedMode{fusedDense, fusedSparse} {
			name := map[fusedMode]string{fusedDense: "dense", fusedSparse: "active"}[mode]
			b.Run(fmt.Sprintf("density=%.2f/%s", tc.density, name), func(b *testing.B) {
				e := &fusedEngine{mode: mode}
				g := NewGradients(s)
				var l Loss
				cpu0, _ := processCPU()
				for b.Loop() {
					var err error
					if l, err = e.Step(s, x, LossConfig{Sparsity: 3}, nil, g, nil); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(l.L0/m, "density")
				// CPU time per step: on a machine shared with other work
				// it varies less than the wall-clock time.
				cpu1, _ := processCPU()
				b.ReportMetric((cpu1-cpu0)*1e9/float64(b.N), "cpu-ns/op")
			})
		}
	}
}
