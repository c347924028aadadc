package model

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/rise-interp/rise/activations"
	"github.com/rise-interp/rise/internal/shared"
)

// golden is testdata/hf/*/golden.json, made by testdata/hf/make_golden.py
// (an independent PyTorch implementation of the Hugging Face forward pass;
// see testdata/hf/README.md).
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
	b, err := os.ReadFile(filepath.Join(dir, "golden.json"))
	if err != nil {
		t.Fatal(err)
	}
	var g golden
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
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
// and Qwen2 (tied, q/k/v biases, theta 1e6) in float32 and bfloat16.
func TestHFParity(t *testing.T) {
	for _, name := range []string{"llama", "qwen2", "qwen2-bf16"} {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(shared.Root(t), "testdata", "hf", name)
			m, err := LoadHF(dir)
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
				if pi == 0 {
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
				var ids []int
				logits := got[(len(p.IDs)-1)*m.Vocab:]
				for range p.Greedy {
					next := argmax(logits)
					ids = append(ids, next)
					if logits, err = m.Forward(context.Background(), []*Sequence{s}, [][]int{{next}}, false, nil); err != nil {
						t.Fatal(err)
					}
				}
				for i := range ids {
					if ids[i] != p.Greedy[i] {
						t.Errorf("prompt %d: greedy ids %v, want %v", pi, ids, p.Greedy)
						break
					}
				}
			}
		})
	}
}
