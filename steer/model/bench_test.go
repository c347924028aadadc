package model

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
	"time"
)

// Qwen2_0_5B is the shape of Qwen2-0.5B (config.json of Qwen/Qwen2-0.5B):
// 494 million parameters.
var Qwen2_0_5B = Config{Arch: ArchQwen2, Dim: 896, Hidden: 4864, Layers: 24, Heads: 14, KVHeads: 2, HeadDim: 64,
	Vocab: 151936, MaxSeq: 4096, NormEps: 1e-6, Theta: 1e6, QKVBias: true, Tied: true}

// readBandwidth measures how fast all cores can stream memory: the sum of
// a 512 MiB float32 buffer, split across goroutines, in bytes per second.
func readBandwidth() float64 {
	buf := make([]float32, 128<<20)
	for i := range buf {
		buf[i] = 1
	}
	workers := runtime.GOMAXPROCS(0)
	best := 0.0
	for range 3 {
		start := time.Now()
		var wg sync.WaitGroup
		sums := make([]float32, workers)
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				part := buf[w*len(buf)/workers : (w+1)*len(buf)/workers]
				var s0, s1, s2, s3 float32
				for i := 0; i+3 < len(part); i += 4 {
					s0 += part[i]
					s1 += part[i+1]
					s2 += part[i+2]
					s3 += part[i+3]
				}
				sums[w] = s0 + s1 + s2 + s3
			}()
		}
		wg.Wait()
		best = max(best, float64(4*len(buf))/time.Since(start).Seconds())
	}
	return best
}

// BenchmarkDecode measures decoding speed in tokens per second for
// stories260K and for a random model of Qwen2-0.5B's shape, with one and
// eight sequences decoded together, beside the bound memory bandwidth puts
// on it: every decoding step reads every weight once, so a batch of B
// sequences cannot beat B × bandwidth / weight bytes tokens per second.
//
//	go test -run XXX -bench Decode -benchtime 1x ./steer/model
func BenchmarkDecode(b *testing.B) {
	bw := readBandwidth()
	models := []struct {
		name string
		load func(testing.TB) *Model
	}{
		{"stories260K", func(t testing.TB) *Model { m, _ := loadStories(t); return m }},
	}
	for _, d := range []DType{F32, BF16, F16, Q8} {
		models = append(models, struct {
			name string
			load func(testing.TB) *Model
		}{"qwen2-0.5B-" + d.String(), func(t testing.TB) *Model {
			m, err := NewRandom(Qwen2_0_5B, 1)
			if err != nil {
				t.Fatal(err)
			}
			m.Convert(d)
			return m
		}})
	}
	for _, mc := range models {
		var m *Model
		for _, batch := range []int{1, 8} {
			b.Run(fmt.Sprintf("%s/batch%d", mc.name, batch), func(b *testing.B) {
				if m == nil {
					m = mc.load(b)
				}
				steps := 64
				if m.Params() > 1e8 {
					steps = 8
				}
				ctx := context.Background()
				var tokens int
				var elapsed time.Duration
				for range b.N {
					seqs := make([]*Sequence, batch)
					toks := make([][]int, batch)
					for i := range seqs {
						seqs[i] = m.NewSequence()
						toks[i] = []int{1, 2, 3, 4, 5, 6, 7, 8}
					}
					// The prompt is read untimed; the timed steps decode
					// one token per sequence.
					logits, err := m.Forward(ctx, seqs, toks, false, nil)
					if err != nil {
						b.Fatal(err)
					}
					for i := range toks {
						toks[i] = []int{Argmax(logits[i*m.Vocab : (i+1)*m.Vocab])}
					}
					start := time.Now()
					for range steps {
						logits, err := m.Forward(ctx, seqs, toks, false, nil)
						if err != nil {
							b.Fatal(err)
						}
						for i := range toks {
							toks[i] = []int{Argmax(logits[i*m.Vocab : (i+1)*m.Vocab])}
						}
					}
					elapsed += time.Since(start)
					tokens += steps * batch
				}
				weightBytes := float64(m.WeightBytes())
				b.ReportMetric(float64(tokens)/elapsed.Seconds(), "tokens/s")
				b.ReportMetric(float64(batch)*bw/weightBytes, "bound_tokens/s")
				b.ReportMetric(bw/1e9, "GB/s")
			})
		}
	}
}

// BenchmarkKernels measures one decoding row's product with 64 rows of
// 896 weights (Qwen2-0.5B's width) at each precision, on one core and
// small enough to stay in cache: the rate the kernels go at when memory
// is not what limits them, in weight bytes per second.
//
//	go test -run XXX -bench Kernels ./steer/model
func BenchmarkKernels(b *testing.B) {
	const rows, cols = 64, 896
	rng := rand.New(rand.NewPCG(1, 2))
	f := make([]float32, rows*cols)
	x := make([]float32, cols)
	for i := range f {
		f[i] = float32(rng.NormFloat64())
	}
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	base := NewMatrix(rows, cols, f)
	out := make([]float32, rows)
	for _, d := range []DType{F32, BF16, F16, Q8} {
		w := base.To(d)
		b.Run(d.String(), func(b *testing.B) {
			b.SetBytes(w.Bytes())
			for b.Loop() {
				gemmRows(out, x, 1, cols, &w, rows, 0)
			}
		})
	}
}

// BenchmarkGroupKernels measures the batched kernels in cache, as
// BenchmarkKernels does one row: 8 rows of x (Qwen2-0.5B's width) meet 64
// rows of weights through the group kernels, 8 rows of x a weight read or
// 4 (Q8: 8, 4 or 1), or 8 rows of x with two rows of weights at a time (the
// AVX-512 pair kernels), in multiply-adds per second on one core.
//
//	go test -run XXX -bench GroupKernels -cpu 1 ./steer/model
func BenchmarkGroupKernels(b *testing.B) {
	const rows, cols, n = 64, 896, 8
	rng := rand.New(rand.NewPCG(1, 2))
	f := make([]float32, rows*cols)
	x := make([]float32, n*cols)
	for i := range f {
		f[i] = float32(rng.NormFloat64())
	}
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	base := NewMatrix(rows, cols, f)
	for _, d := range []DType{F32, BF16, F16} {
		w := base.To(d)
		if !haveDotGroup(d, cols) {
			continue
		}
		for _, g := range []int{4, 8} {
			b.Run(fmt.Sprintf("%v/%d-rows", d, g), func(b *testing.B) {
				out := make([]float32, g)
				for b.Loop() {
					for j := range rows {
						for r := 0; r < n; r += g {
							w.dotGroup(j, x[r*cols:], cols, out)
						}
					}
				}
				b.ReportMetric(float64(b.N)*rows*cols*n/b.Elapsed().Seconds()/1e9, "GMAC/s")
			})
		}
		if haveDotPair(d, cols) {
			b.Run(fmt.Sprintf("%v/8-rows-2-weight-rows", d), func(b *testing.B) {
				var out [16]float32
				for b.Loop() {
					for j := 0; j < rows; j += 2 {
						w.dotPair(j, x, cols, &out)
					}
				}
				b.ReportMetric(float64(b.N)*rows*cols*n/b.Elapsed().Seconds()/1e9, "GMAC/s")
			})
		}
	}
	// Q8: rows of x quantised as decoding does, one at a time or four.
	if !haveDotQ8x4(cols) {
		return
	}
	w := base.To(Q8)
	nb := blocksPerRow(cols)
	xq, xs := make([]int8, n*cols), make([]float32, n*nb)
	for r := range n {
		quantizeVector(xq[r*cols:(r+1)*cols], xs[r*nb:(r+1)*nb], x[r*cols:(r+1)*cols])
	}
	xst := make([]float32, n*nb)
	for r := 0; r+8 <= n; r += 8 {
		transposeScales(xst[r*nb:(r+8)*nb], xs[r*nb:(r+8)*nb], nb)
	}
	for _, g := range []int{1, 4, 8} {
		if g == 8 && !haveDotQ8x8(cols) {
			continue
		}
		b.Run(fmt.Sprintf("q8/%d-rows", g), func(b *testing.B) {
			var d [4]float32
			var d8 [8]float32
			for b.Loop() {
				for j := range rows {
					q, s := w.Q[j*cols:(j+1)*cols], w.Scales[j*nb:(j+1)*nb]
					for r := 0; r < n; r += g {
						switch g {
						case 8:
							dotQ8x8(q, s, xq[r*cols:], xst[r*nb:(r+8)*nb], &d8)
						case 4:
							dotQ8x4(q, s, xq[r*cols:], xs[r*nb:], &d)
						default:
							d[0] = dotQ8(q, s, xq[r*cols:(r+1)*cols], xs[r*nb:(r+1)*nb], false)
						}
					}
				}
			}
			b.ReportMetric(float64(b.N)*rows*cols*n/b.Elapsed().Seconds()/1e9, "GMAC/s")
		})
	}
}
