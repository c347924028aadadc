package sae

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/rise-interp/rise/activations"
	"github.com/rise-interp/rise/activations/synth"
	"github.com/rise-interp/rise/internal/matmul"
	"github.com/rise-interp/rise/internal/safetensors"
)

// TestRunBench checks that a tiny benchmark reports consistent, finite
// figures for each engine and architecture.
func TestRunBench(t *testing.T) {
	for _, engine := range []string{"fused", "graph"} {
		for _, arch := range []Arch{Standard, TopK} {
			c := BenchConfig{Engine: engine, Arch: arch, DIn: 16, DSae: 32, Batch: 8, K: 4, Steps: 3, Warmup: 1, Seed: 5}
			calls := 0
			c.Progress = func(done, total int) {
				calls++
				if done != calls || total != 4 {
					t.Errorf("%s %s: progress(%d, %d) at call %d, want (%d, 4)", engine, arch, done, total, calls, calls)
				}
			}
			r, err := RunBench(context.Background(), c)
			if err != nil {
				t.Fatalf("%s %s: %v", engine, arch, err)
			}
			if calls != 4 {
				t.Errorf("%s %s: progress called %d times, want 4", engine, arch, calls)
			}
			wantArch, wantK := "relu", 0
			if arch == TopK {
				wantArch, wantK = "topk", 4
			}
			if r.Engine != engine || r.Arch != wantArch || r.DIn != 16 || r.DSae != 32 || r.Batch != 8 || r.K != wantK {
				t.Errorf("%s %s: result %+v does not echo the configuration", engine, arch, r)
			}
			if r.BLAS != matmul.BLASName || r.Threads != runtime.GOMAXPROCS(0) {
				t.Errorf("%s %s: blas %q threads %d, want %q and %d", engine, arch, r.BLAS, r.Threads, matmul.BLASName, runtime.GOMAXPROCS(0))
			}
			for name, v := range map[string]float64{"samples_per_s": r.SamplesPerS, "gflops": r.GFLOPS, "seconds_per_step": r.SecondsPerStep} {
				if !(v > 0) || math.IsInf(v, 0) {
					t.Errorf("%s %s: %s = %v, want a positive finite number", engine, arch, name, v)
				}
			}
			if got := r.SamplesPerS * r.SecondsPerStep; math.Abs(got-8) > 1e-6 {
				t.Errorf("%s %s: samples_per_s × seconds_per_step = %v, want the batch, 8", engine, arch, got)
			}
			flops := StepFLOPs(engine, arch, 8, 16, 32)
			if got := r.GFLOPS * 1e9 * r.SecondsPerStep; math.Abs(got-flops) > 1e-6*flops {
				t.Errorf("%s %s: gflops × seconds_per_step = %v FLOPs, want %v", engine, arch, got, flops)
			}
		}
	}
}

// TestBenchResultJSON checks the JSON keys, which the reference shares.
func TestBenchResultJSON(t *testing.T) {
	for _, tc := range []struct {
		r     BenchResult
		wantK bool
	}{
		{BenchResult{Engine: "fused", Arch: "relu", DIn: 4, DSae: 8, Batch: 2}, false},
		{BenchResult{Engine: "fused", Arch: "topk", DIn: 4, DSae: 8, Batch: 2, K: 3}, true},
	} {
		data, err := json.Marshal(tc.r)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatal(err)
		}
		for _, key := range []string{"engine", "arch", "d_in", "d_sae", "batch", "samples_per_s", "gflops", "blas", "threads", "seconds_per_step"} {
			if _, ok := m[key]; !ok {
				t.Errorf("%s lacks the key %q", data, key)
			}
		}
		if _, ok := m["k"]; ok != tc.wantK {
			t.Errorf("%s: key k present = %v, want %v", data, ok, tc.wantK)
		}
		if len(m) != 10+map[bool]int{true: 1}[tc.wantK] {
			t.Errorf("%s has %d keys, want only the documented ones", data, len(m))
		}
	}
}

// TestStepFLOPs checks the cost model: dense steps count 6·B·d_in·d_sae,
// the fused engine's sparse TopK 4·B·d_in·d_sae.
func TestStepFLOPs(t *testing.T) {
	for _, tc := range []struct {
		engine string
		arch   Arch
		want   float64
	}{
		{"fused", Standard, 6 * 2 * 3 * 5},
		{"fused", TopK, 4 * 2 * 3 * 5},
		{"graph", TopK, 6 * 2 * 3 * 5},
		{"torch", TopK, 6 * 2 * 3 * 5},
	} {
		if got := StepFLOPs(tc.engine, tc.arch, 2, 3, 5); got != tc.want {
			t.Errorf("StepFLOPs(%s, %s) = %v, want %v", tc.engine, tc.arch, got, tc.want)
		}
	}
}

// TestRunBenchErrors checks that bad configurations are refused with a
// message naming the field, and that a cancelled context stops the run.
func TestRunBenchErrors(t *testing.T) {
	ok := BenchConfig{Engine: "fused", Arch: TopK, DIn: 4, DSae: 8, Batch: 2, K: 2, Steps: 1}
	for _, tc := range []struct {
		edit func(*BenchConfig)
		want string
	}{
		{func(c *BenchConfig) { c.Engine = "blas" }, "engine must be fused or graph"},
		{func(c *BenchConfig) { c.Arch = JumpReLU }, "architecture must be"},
		{func(c *BenchConfig) { c.DIn = 0 }, "must be positive"},
		{func(c *BenchConfig) { c.K = 9 }, "k between 1 and d_sae"},
		{func(c *BenchConfig) { c.Steps = 0 }, "at least one timed step"},
		{func(c *BenchConfig) { c.Warmup = -1 }, "must not be negative"},
	} {
		c := ok
		tc.edit(&c)
		_, err := RunBench(context.Background(), c)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want one containing %q", c, err, tc.want)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := RunBench(ctx, ok); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled run: error %v, want context.Canceled", err)
	}
}

// BenchmarkEngines runs each engine on small versions of the benchmark
// configurations; one op is one training step (engine and Adam). rise bench
// runs the full sizes and compares them with PyTorch.
func BenchmarkEngines(b *testing.B) {
	configs := []BenchConfig{
		{Arch: Standard, DIn: 256, DSae: 1024, Batch: 256},
		{Arch: TopK, DIn: 256, DSae: 2048, Batch: 512, K: 32},
	}
	for _, engine := range []string{"fused", "graph"} {
		for _, c := range configs {
			c.Engine, c.Seed, c.Warmup = engine, 1, 1
			name := fmt.Sprintf("%s/%s/d_in=%d/d_sae=%d/batch=%d", engine, BenchArchName(c.Arch), c.DIn, c.DSae, c.Batch)
			b.Run(name, func(b *testing.B) {
				c.Steps = b.N
				r, err := RunBench(context.Background(), c)
				if err != nil {
					b.Fatal(err)
				}
				// ns/op counts the timed steps only, not the set-up and
				// warm-up that RunBench does first.
				b.ReportMetric(r.SecondsPerStep*1e9, "ns/op")
				b.ReportMetric(r.SamplesPerS, "samples/s")
				b.ReportMetric(r.GFLOPS, "GFLOP/s")
			})
		}
	}
}

// TestRunTrainBench runs the whole-run benchmark on a small planted dump and
// checks what it reports and the files it writes for the reference: the
// initial weights as the trainer made them and the row order of every
// step, read back through independent readers (the safetensors reader and
// a plain .npy header parse).
func TestRunTrainBench(t *testing.T) {
	dir := t.TempDir()
	cfg := synth.DefaultConfig()
	cfg.Rows, cfg.DModel, cfg.Features = 2500, 32, 64
	if _, err := synth.Generate(context.Background(), filepath.Join(dir, "dump"), cfg, false, nil); err != nil {
		t.Fatal(err)
	}
	dump, err := activations.Open(filepath.Join(dir, "dump"))
	if err != nil {
		t.Fatal(err)
	}
	defer dump.Close()
	layer := dump.Layers[0]
	ref := filepath.Join(dir, "ref")
	if err := os.Mkdir(ref, 0o755); err != nil {
		t.Fatal(err)
	}
	calls := 0
	r, err := RunTrainBench(context.Background(), layer, RunBenchConfig{Steps: 3, Width: 48, RefDir: ref, Progress: func(done, total int) {
		calls++
		if done != calls || total != 3 {
			t.Errorf("progress(%d, %d) at call %d", done, total, calls)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	if r.Engine != "fused" || r.Arch != "relu" || r.DIn != 32 || r.DSae != 48 || r.Batch != 1024 || r.Steps != 3 || calls != 3 {
		t.Errorf("result %+v after %d progress calls: want fused relu, d_in 32, d_sae 48, batch 1024, 3 steps", r, calls)
	}
	if !(r.Seconds > 0) || math.Abs(r.SamplesPerS*r.Seconds-3*1024) > 1e-6*3*1024 || !(r.FinalLoss > 0) || !(r.FinalMSE > 0) {
		t.Errorf("result %+v: want positive seconds, samples/s × seconds = 3072 and positive losses", r)
	}

	if sum := r.DenseStepS*float64(r.Steps-r.ActiveSteps) + r.ActiveStepS*float64(r.ActiveSteps); !(sum > 0.5*r.Seconds && sum <= r.Seconds) {
		t.Errorf("the step times add up to %v s of the run's %v s", sum, r.Seconds)
	}

	// The initial weights: W_enc = W_decᵀ, decoder rows of norm 0.1 (the
	// preset's), b_dec the scaled mean of the rows.
	tensors, meta, err := safetensors.Read(filepath.Join(ref, RunRefWeights))
	if err != nil {
		t.Fatal(err)
	}
	wEnc, wDec := tensors["W_enc"], tensors["W_dec"]
	if !slices.Equal(wEnc.Shape, []int{32, 48}) || !slices.Equal(wDec.Shape, []int{48, 32}) {
		t.Fatalf("shapes W_enc %v W_dec %v", wEnc.Shape, wDec.Shape)
	}
	for j := range 48 {
		var n float64
		for i := range 32 {
			n += float64(wDec.Data[j*32+i]) * float64(wDec.Data[j*32+i])
			if wEnc.Data[i*48+j] != wDec.Data[j*32+i] {
				t.Fatalf("W_enc[%d, %d] is not W_dec[%d, %d]", i, j, j, i)
			}
		}
		if math.Abs(math.Sqrt(n)-0.1) > 1e-5 {
			t.Fatalf("decoder row %d has norm %v, want 0.1", j, math.Sqrt(n))
		}
	}
	scale, _ := strconv.ParseFloat(meta["input_scale"], 64)
	rows := make([]float32, layer.Rows*32)
	if err := layer.ReadRows(0, rows); err != nil {
		t.Fatal(err)
	}
	for i := range 32 {
		var mean float64
		for r := range layer.Rows {
			mean += float64(rows[r*32+i])
		}
		mean *= scale / float64(layer.Rows)
		if got := float64(tensors["b_dec"].Data[i]); math.Abs(got-mean) > 1e-4*(1+math.Abs(mean)) {
			t.Fatalf("b_dec[%d] = %v, want the scaled mean %v", i, got, mean)
		}
	}
	for key, want := range map[string]string{"steps": "3", "batch": "1024", "warmup_steps": "0", "decay": "cosine", "lr": "0.0001", "apply_b_dec": "true"} {
		if meta[key] != want {
			t.Errorf("metadata %s = %q, want %q", key, meta[key], want)
		}
	}
	if l1, _ := strconv.ParseFloat(meta["l1"], 64); math.Abs(l1-2e-3*32) > 1e-6 {
		t.Errorf("metadata l1 = %v, want 2e-3 per dimension × 32", l1)
	}

	// The order: 3 batches of 1024 rows, every one in range; an epoch is
	// two batches (2500 rows), in which no row comes twice.
	raw, err := os.ReadFile(filepath.Join(ref, RunRefOrder))
	if err != nil {
		t.Fatal(err)
	}
	hlen := int(raw[8]) | int(raw[9])<<8
	if string(raw[:6]) != "\x93NUMPY" || (10+hlen)%64 != 0 || !strings.Contains(string(raw[10:10+hlen]), "'descr': '<i8', 'fortran_order': False, 'shape': (3072,)") {
		t.Fatalf("order.npy header %q", raw[:10+hlen])
	}
	data := raw[10+hlen:]
	if len(data) != 3072*8 {
		t.Fatalf("order.npy holds %d bytes of data, want 3072 int64", len(data))
	}
	seen := map[int64]bool{}
	for k := range 3072 {
		if k == 2048 {
			clear(seen)
		}
		v := int64(binary.LittleEndian.Uint64(data[k*8:]))
		if v < 0 || v >= int64(layer.Rows) || seen[v] {
			t.Fatalf("order[%d] = %d: want a row of [0, %d) not yet seen in the epoch", k, v, layer.Rows)
		}
		seen[v] = true
	}
}
