package sae

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"runtime"
	"strings"
	"testing"

	"github.com/rise-interp/rise/internal/matmul"
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
