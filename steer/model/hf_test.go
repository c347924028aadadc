package model

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rise-interp/rise/activations"
	"github.com/rise-interp/rise/internal/jsontest"
	"github.com/rise-interp/rise/internal/shared"
)

// golden is testdata/hf/*/golden.json: for llama, qwen2 and qwen2-bf16
// made by testdata/hf/make_golden.py (an independent PyTorch
// implementation of the Hugging Face forward pass), for llama-rope-params,
// llama3-scaled, qwen2-yarn and qwen3 by llama.cpp through
// testdata/hf/make_variants.py
// (see testdata/hf/README.md).
type golden struct {
	Prompts []struct {
		Text   string `json:"text"`
		IDs    []int  `json:"ids"`
		Logits string `json:"logits"`
		Greedy []int  `json:"greedy"`
	} `json:"prompts"`
	Tolerance float64 `json:"max_abs_tolerance"`
}

func readGolden(t *testing.T, dir string) golden {
	t.Helper()
	var g golden
	jsontest.ReadFile(t, filepath.Join(dir, "golden.json"), &g)
	return g
}

func readNpy(t *testing.T, path string) ([]float32, int, int) {
	t.Helper()
	x, r, c, err := activations.ReadNpy(path)
	if err != nil {
		t.Fatal(err)
	}
	return x, r, c
}

// TestHFParity holds the runtime against the golden logits, residual
// streams and greedy continuations of a random Llama (untied, no biases)
// and Qwen2 (tied, q/k/v biases, theta 1e6) in float32 and bfloat16, a
// Llama whose config has RoPE only in rope_parameters (transformers 5), a
// Llama with llama3 RoPE scaling, a Qwen2 with yarn scaling and a Qwen3
// (q/k norms, head_dim × heads ≠ hidden_size).
func TestHFParity(t *testing.T) {
	// qwen2-bf16 runs twice: held as stored (bfloat16, through the 16-bit
	// kernels) and widened to float32 (as before weights could stay 16-bit).
	for _, name := range []string{"llama", "qwen2", "qwen2-bf16", "qwen2-bf16/f32", "llama-rope-params", "llama3-scaled", "qwen2-yarn", "qwen3"} {
		t.Run(name, func(t *testing.T) {
			name, as, _ := strings.Cut(name, "/")
			var o Options
			if as != "" {
				o = Options{DType: F32, SetDType: true}
			}
			dir := filepath.Join(shared.Root(t), "testdata", "hf", name)
			m, err := LoadHFWith(dir, o)
			if err != nil {
				t.Fatal(err)
			}
			g := readGolden(t, dir)
			tol := g.Tolerance
			for pi, p := range g.Prompts {
				want, rows, cols := readNpy(t, filepath.Join(dir, p.Logits))
				if rows != len(p.IDs) || cols != m.Vocab {
					t.Fatalf("golden logits %s: [%d, %d] for %d ids and vocab %d", p.Logits, rows, cols, len(p.IDs), m.Vocab)
				}
				resid := map[int][]float32{}
				hook := func(layer int, h []float32, _ []Row) {
					resid[layer] = append([]float32(nil), h...)
				}
				s := m.NewSequence()
				got, err := m.Forward(context.Background(), []*Sequence{s}, [][]int{p.IDs}, true, hook)
				if err != nil {
					t.Fatal(err)
				}
				worst := 0.0
				for i := range want {
					worst = math.Max(worst, math.Abs(float64(got[i]-want[i])))
				}
				t.Logf("prompt %d: max |logit − golden| = %.2g", pi, worst)
				if worst > tol {
					t.Errorf("prompt %d: max |logit − golden| = %.3g, want ≤ %g", pi, worst, tol)
				}
				if _, err := os.Stat(filepath.Join(dir, "golden_resid_0.npy")); err == nil && pi == 0 {
					for l := range m.Layers {
						w, _, _ := readNpy(t, filepath.Join(dir, "golden_resid_"+string(rune('0'+l))+".npy"))
						worst := 0.0
						for i := range w {
							worst = math.Max(worst, math.Abs(float64(resid[l][i]-w[i])))
						}
						if worst > tol {
							t.Errorf("residual after block %d: max diff %.3g, want ≤ %g", l, worst, tol)
						}
					}
				}
				// Greedy continuation, one token at a time through the cache.
				if ids := greedyFrom(t, m, s, got[(len(p.IDs)-1)*m.Vocab:], len(p.Greedy)); !slices.Equal(ids, p.Greedy) {
					t.Errorf("prompt %d: greedy ids %v, want %v", pi, ids, p.Greedy)
				}
			}
		})
	}
}

// TestHFGreedyLlamaCpp continues the prompts of the make_golden.py
// fixtures for 32 greedy tokens, as llama.cpp does
// (golden_llamacpp.json, made by testdata/hf/make_variants.py).
func TestHFGreedyLlamaCpp(t *testing.T) {
	for _, name := range []string{"llama", "qwen2", "qwen2-bf16"} {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(shared.Root(t), "testdata", "hf", name)
			m, err := LoadHF(dir)
			if err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(filepath.Join(dir, "golden_llamacpp.json"))
			if err != nil {
				t.Fatal(err)
			}
			var g struct {
				Prompts []struct {
					IDs    []int `json:"ids"`
					Greedy []int `json:"greedy"`
				} `json:"prompts"`
			}
			if err := json.Unmarshal(b, &g); err != nil {
				t.Fatal(err)
			}
			for pi, p := range g.Prompts {
				if len(p.Greedy) != 32 {
					t.Fatalf("prompt %d: %d golden greedy ids, want 32", pi, len(p.Greedy))
				}
				s := m.NewSequence()
				logits, err := m.Forward(context.Background(), []*Sequence{s}, [][]int{p.IDs}, false, nil)
				if err != nil {
					t.Fatal(err)
				}
				if ids := greedyFrom(t, m, s, logits, len(p.Greedy)); !slices.Equal(ids, p.Greedy) {
					t.Errorf("prompt %d: greedy ids %v, want llama.cpp's %v", pi, ids, p.Greedy)
				}
			}
		})
	}
}

// TestPublishedConfigs loads the config.json of published reasoning models
// (testdata/hf/published: their Hugging Face config.json with the sizes
// scaled down, random weights; made by testdata/hf/make_variants.py) and
// runs a few tokens through each.
func TestPublishedConfigs(t *testing.T) {
	llama3 := RopeScaling{Type: RopeLlama3, Factor: 8, LowFreqFactor: 1, HighFreqFactor: 4, OriginalMaxPos: 8192}
	for _, tc := range []struct {
		name  string
		arch  string
		theta float64
		max   int
		rope  RopeScaling
	}{
		{"DeepSeek-R1-Distill-Qwen-1.5B", ArchQwen2, 10000, 131072, RopeScaling{}},
		{"DeepSeek-R1-Distill-Qwen-7B", ArchQwen2, 10000, 131072, RopeScaling{}},
		{"DeepSeek-R1-Distill-Llama-8B", ArchLlama, 500000, 131072, llama3},
		{"Qwen3-8B", ArchQwen3, 1e6, 40960, RopeScaling{}},
		{"QwQ-32B", ArchQwen2, 1e6, 40960, RopeScaling{}},
		{"QwQ-32B-yarn", ArchQwen2, 1e6, 40960, RopeScaling{Type: RopeYarn, Factor: 4, OriginalMaxPos: 32768}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := LoadHF(filepath.Join(shared.Root(t), "testdata", "hf", "published", tc.name))
			if err != nil {
				t.Fatal(err)
			}
			c := m.Config
			if c.Arch != tc.arch || c.Theta != tc.theta || c.MaxSeq != tc.max || c.Rope != tc.rope || c.Tied ||
				c.QKVBias != (tc.arch == ArchQwen2) || c.QKNorm != (tc.arch == ArchQwen3) || c.HeadDim != 8 {
				t.Errorf("config %+v", c)
			}
			logits, err := m.Forward(context.Background(), []*Sequence{m.NewSequence()}, [][]int{{1, 2, 3, 4}}, true, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, x := range logits {
				if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
					t.Fatalf("logit %v", x)
				}
			}
		})
	}
}

// greedyFrom continues sequence s, whose last logits are given, for n
// greedy tokens one at a time through its cache.
func greedyFrom(t *testing.T, m *Model, s *Sequence, logits []float32, n int) []int {
	t.Helper()
	var ids []int
	for range n {
		next := Argmax(logits)
		ids = append(ids, next)
		var err error
		if logits, err = m.Forward(context.Background(), []*Sequence{s}, [][]int{{next}}, false, nil); err != nil {
			t.Fatal(err)
		}
	}
	return ids
}
