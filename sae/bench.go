package sae

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"time"

	"github.com/rise-interp/rise/internal/matmul"
)

// BenchConfig sets up a throughput benchmark: a fixed number of training
// steps on random data, the same work as the PyTorch reference
// (shared/bench/torch_sae_ref.py) does, so that the two can be compared in
// samples per second.
type BenchConfig struct {
	Engine string // "fused" or "graph"
	Arch   Arch   // Standard (the reference's "relu") or TopK
	DIn    int
	DSae   int
	Batch  int
	K      int // active latents per row (TopK)
	Steps  int // timed steps
	Warmup int // untimed steps before them
	Seed   uint64

	// Progress, when not nil, is called after every step, warm-up steps
	// included, with the steps done and the steps in all.
	Progress func(done, total int)
}

// BenchResult is the throughput one engine reached on one configuration.
// Its JSON keys are those of the PyTorch reference's output, so that the two
// can be read side by side.
type BenchResult struct {
	Engine         string  `json:"engine"`
	Arch           string  `json:"arch"` // "relu" or "topk", as the reference names them
	DIn            int     `json:"d_in"`
	DSae           int     `json:"d_sae"`
	Batch          int     `json:"batch"`
	K              int     `json:"k,omitempty"` // TopK only
	SamplesPerS    float64 `json:"samples_per_s"`
	GFLOPS         float64 `json:"gflops"`  // StepFLOPs / SecondsPerStep / 1e9
	BLAS           string  `json:"blas"`    // matmul.BLASName
	Threads        int     `json:"threads"` // GOMAXPROCS
	SecondsPerStep float64 `json:"seconds_per_step"`
}

// Benchmark settings shared with the PyTorch reference.
const (
	benchLR      = 1e-4 // Adam learning rate
	benchL1      = 2e-3 // λ of the ReLU SAE's decoder-norm-weighted L1
	benchDecNorm = 0.1  // decoder row norm at initialisation
)

// BenchArchName returns the PyTorch reference's name for an architecture:
// "relu" for Standard, and the architecture's own name otherwise.
func BenchArchName(a Arch) string {
	if a == Standard {
		return "relu"
	}
	return string(a)
}

// StepFLOPs returns the floating-point operations one training step is
// counted as, by the cost model of DESIGN.md: 6·B·d_in·d_sae for a dense
// step, and 4·B·d_in·d_sae for TopK with a sparse decoder, which only the
// fused engine has (engine is "fused", "graph" or "torch"). The model makes
// GFLOP/s figures comparable with the BLAS's own rate; samples per second
// remain the measure to compare engines by.
func StepFLOPs(engine string, arch Arch, batch, dIn, dSae int) float64 {
	n := float64(batch) * float64(dIn) * float64(dSae)
	if engine == "fused" && (arch == TopK || arch == BatchTopK) {
		return 4 * n
	}
	return 6 * n
}

// validate reports the first field of c that cannot be benchmarked.
func (c BenchConfig) validate() error {
	switch {
	case c.Engine != "fused" && c.Engine != "graph":
		return fmt.Errorf("sae: bench: engine must be fused or graph, got %q", c.Engine)
	case c.Arch != Standard && c.Arch != TopK:
		return fmt.Errorf("sae: bench: architecture must be standard (relu) or topk, as the reference has, got %q", c.Arch)
	case c.DIn < 1 || c.DSae < 1 || c.Batch < 1:
		return fmt.Errorf("sae: bench: d_in, d_sae and batch must be positive, got %d, %d and %d", c.DIn, c.DSae, c.Batch)
	case c.Arch == TopK && (c.K < 1 || c.K > c.DSae):
		return fmt.Errorf("sae: bench: topk needs k between 1 and d_sae (%d), got %d", c.DSae, c.K)
	case c.Steps < 1:
		return fmt.Errorf("sae: bench: at least one timed step is needed, got %d", c.Steps)
	case c.Warmup < 0:
		return fmt.Errorf("sae: bench: warm-up steps must not be negative, got %d", c.Warmup)
	case int64(c.DIn)*int64(c.DSae) > 1<<31 || int64(c.Batch)*int64(c.DSae) > 1<<31:
		return fmt.Errorf("sae: bench: d_in %d × d_sae %d × batch %d is too large", c.DIn, c.DSae, c.Batch)
	}
	return nil
}

// RunBench trains an SAE for c.Warmup and then c.Steps steps and reports the
// speed of the timed steps. The work is the PyTorch reference's: decoder
// rows random with norm 0.1, W_enc = W_dec^T, zero biases, b_dec subtracted
// before the encoder; for Standard the decoder-norm-weighted L1 with λ 2e-3,
// for TopK plain top-k without AuxK and without decoder normalisation; Adam
// with lr 1e-4; and one batch of standard Gaussian rows, drawn once from
// c.Seed and reused every step. A step is the engine's forward and backward
// pass and the Adam update of every parameter. Cancelling ctx stops the run
// between steps with ctx's error.
func RunBench(ctx context.Context, c BenchConfig) (BenchResult, error) {
	if err := c.validate(); err != nil {
		return BenchResult{}, err
	}
	k := 0
	if c.Arch == TopK {
		k = c.K
	}
	s, err := New(c.Arch, c.DIn, c.DSae, k)
	if err != nil {
		return BenchResult{}, err
	}
	s.Init(c.Seed, benchDecNorm, nil, 0)

	rng := rand.New(rand.NewPCG(c.Seed, 0xbe4c))
	x := make([]float32, c.Batch*c.DIn)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}

	var eng Engine
	if c.Engine == "graph" {
		eng = NewGraphEngine()
	} else {
		eng = NewFusedEngine()
	}
	var lc LossConfig
	if c.Arch == Standard {
		lc.Sparsity = benchL1
	}
	g := NewGradients(s)
	opt := newAdam([][]float32{s.WEnc, s.WDec, s.BEnc, s.BDec}, 0.9, 0.999)
	grads := [][]float32{g.WEnc, g.WDec, g.BEnc, g.BDec}

	total := c.Warmup + c.Steps
	var start time.Time
	for i := range total {
		if i == c.Warmup {
			start = time.Now()
		}
		if err := ctx.Err(); err != nil {
			return BenchResult{}, err
		}
		loss, err := eng.Step(s, x, lc, nil, g, nil)
		if err != nil {
			return BenchResult{}, err
		}
		if math.IsNaN(loss.Total) || math.IsInf(loss.Total, 0) {
			return BenchResult{}, fmt.Errorf("sae: bench: %s %s step %d: the loss is %v, expected a finite value", c.Engine, BenchArchName(c.Arch), i+1, loss.Total)
		}
		opt.step(grads, benchLR)
		if c.Progress != nil {
			c.Progress(i+1, total)
		}
	}
	perStep := time.Since(start).Seconds() / float64(c.Steps)
	return BenchResult{
		Engine: c.Engine, Arch: BenchArchName(c.Arch), DIn: c.DIn, DSae: c.DSae, Batch: c.Batch, K: k,
		SamplesPerS:    float64(c.Batch) / perStep,
		GFLOPS:         StepFLOPs(c.Engine, c.Arch, c.Batch, c.DIn, c.DSae) / perStep / 1e9,
		BLAS:           matmul.BLASName,
		Threads:        runtime.GOMAXPROCS(0),
		SecondsPerStep: perStep,
	}, nil
}
