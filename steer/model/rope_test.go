package model

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/rise-interp/rise/internal/shared"
)

// ulps is the distance between two float32 values in units in the last
// place.
func ulps(a, b float32) int64 {
	x, y := int64(math.Float32bits(a)), int64(math.Float32bits(b))
	if x > y {
		return x - y
	}
	return y - x
}

// TestRopeGolden holds the inverse frequencies and attention factors of
// default, linear, llama3 and YaRN RoPE against testdata/hf/rope_golden.json:
// the float32 values PyTorch computes with the operations of transformers'
// modeling_rope_utils.py (made by testdata/hf/make_variants.py). torch's
// float32 pow and Go's correctly rounded one may differ in the last bit (two
// after linear's division), nothing more, and in a few values only.
func TestRopeGolden(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(shared.Root(t), "testdata", "hf", "rope_golden.json"))
	if err != nil {
		t.Fatal(err)
	}
	var g struct {
		Cases []struct {
			Name            string          `json:"name"`
			Config          json.RawMessage `json:"config"`
			InvFreq         []float64       `json:"inv_freq"`
			AttentionFactor float64         `json:"attention_factor"`
		} `json:"cases"`
	}
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	if len(g.Cases) < 8 {
		t.Fatalf("%d cases, want 8", len(g.Cases))
	}
	for _, tc := range g.Cases {
		t.Run(tc.Name, func(t *testing.T) {
			c, err := parseHFConfig("config.json", tc.Config)
			if err != nil {
				t.Fatal(err)
			}
			inv, scale := c.ropeFrequencies()
			if len(inv) != len(tc.InvFreq) {
				t.Fatalf("%d frequencies, want %d", len(inv), len(tc.InvFreq))
			}
			off := 0
			for i, w := range tc.InvFreq {
				if d := ulps(inv[i], float32(w)); d > 2 {
					t.Errorf("inv_freq[%d] = %g, want %g (%d ulps apart)", i, inv[i], w, d)
				} else if d > 0 {
					off++
				}
			}
			if off > 2 {
				t.Errorf("%d of %d frequencies differ in their last bits, want at most 2", off, len(inv))
			}
			if math.Abs(float64(scale)-float64(float32(tc.AttentionFactor))) > 0 {
				t.Errorf("attention factor %v, want %v", scale, float32(tc.AttentionFactor))
			}
		})
	}
}

// TestRopeTablesGrowWithUse: cos and sin are computed as positions are
// reached, chunk by chunk, with the values a table of every position
// would hold; concurrent readers see the same values.
func TestRopeTablesGrowWithUse(t *testing.T) {
	c := Config{Arch: ArchLlama, Dim: 32, Hidden: 64, Layers: 1, Heads: 2, KVHeads: 1, HeadDim: 16, Vocab: 10,
		MaxSeq: 1 << 40, NormEps: 1e-6, Theta: 500000,
		Rope: RopeScaling{Type: RopeYarn, Factor: 4, OriginalMaxPos: 64}}
	m, err := NewRandom(c, 1)
	if err != nil {
		t.Fatal(err)
	}
	if p := m.ropeTab.chunks.Load(); p != nil {
		t.Fatalf("%d chunks before any position was asked for", len(*p))
	}
	inv, scale := c.ropeFrequencies()
	if scale == 1 {
		t.Fatal("yarn with factor 4 should scale cos and sin")
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := g; p < 3*ropeChunkLen; p += 4 {
				cs, sn := m.Rope(p)
				for i, f := range inv {
					a := float64(float32(float32(p) * f))
					if cs[i] != float32(float32(math.Cos(a))*scale) || sn[i] != float32(float32(math.Sin(a))*scale) {
						t.Errorf("position %d frequency %d: cos %v sin %v", p, i, cs[i], sn[i])
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	if n := len(*m.ropeTab.chunks.Load()); n != 3 {
		t.Errorf("%d chunks for %d positions, want 3", n, 3*ropeChunkLen)
	}
}

// TestHFHugeMaxPositions: a config.json declaring 10¹² positions loads and
// generates without allocating for them (it used to build RoPE tables of
// every declared position: out of memory).
func TestHFHugeMaxPositions(t *testing.T) {
	for _, n := range []string{"1000000000000", "1e12"} {
		t.Run(n, func(t *testing.T) {
			d := copyDir(t, filepath.Join(shared.Root(t), "testdata", "hf", "llama"))
			p := filepath.Join(d, "config.json")
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			b = []byte(strings.Replace(string(b), `"max_position_embeddings": 256`, `"max_position_embeddings": `+n, 1))
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			m, tok, err := Load(d, "")
			if err != nil {
				t.Fatal(err)
			}
			if m.MaxSeq != 1e12 {
				t.Fatalf("MaxSeq %d", m.MaxSeq)
			}
			g, err := Generate(context.Background(), m, tok, []string{"Once upon a time"}, GenerateOptions{MaxTokens: 5, NoStop: true})
			if err != nil {
				t.Fatal(err)
			}
			runtime.ReadMemStats(&after)
			if len(g[0].Tokens) != 5 {
				t.Errorf("%d tokens", len(g[0].Tokens))
			}
			if mb := float64(after.TotalAlloc-before.TotalAlloc) / (1 << 20); mb > 64 {
				t.Errorf("loading and 5 tokens allocated %.0f MB", mb)
			}
		})
	}
}
