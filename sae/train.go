package sae

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/rise-interp/rise/activations"
	"github.com/rise-interp/rise/internal/bf16"
	"github.com/rise-interp/rise/internal/inputerr"
)

// TrainConfig sets up a training run. Zero values take the defaults that
// Defaults fills in.
type TrainConfig struct {
	Arch  Arch
	Width int // d_sae
	K     int // TopK, BatchTopK

	Sparsity float32 // λ: L1 (standard) or L0 (jumprelu) coefficient
	// SparsityPerDim reads λ against an MSE averaged over the d_in
	// dimensions, as RISE states it, rather than summed as rise's objective
	// (and SAELens's) does: λ is multiplied by d_in.
	SparsityPerDim bool
	SparsityWarmup float64 // fraction of the steps over which λ rises linearly from 0
	AuxKCoeff      float32 // AuxK coefficient (TopK family); default 1/32 (Gao et al. 2024)
	AuxKLatents    int     // k_aux; default d_in/2
	Bandwidth      float32 // JumpReLU kernel width; default 0.001
	InitThreshold  float32 // JumpReLU initial threshold; default 0.001

	Batch      int
	LR         float64
	Warmup     float64 // fraction of the steps with a linear learning-rate warm-up
	Decay      string  // "cosine" (to zero) or "constant"
	ClipNorm   float64 // clip the global gradient norm to this; 0 turns clipping off
	Beta1      float64 // Adam; default 0.9
	Beta2      float64 // Adam; default 0.999
	Steps      int     // number of optimiser steps; 0 derives it from Epochs or Samples
	Epochs     int     // passes over the data when Steps is 0
	Samples    int     // rows to train on when Steps and Epochs are 0 (at least one epoch); default DefaultSamples
	Seed       uint64
	EngineName string // "fused" (default) or "graph"
	// Precision is that of the fused engine's dense products (the
	// encoder's; the decoder's and the gradients' too while a step runs
	// dense): "f32" (default) or "bf16" (inputs rounded to bfloat16,
	// float32 sums, float32 weights and optimiser, on CPUs with
	// AVX512_BF16; see internal/bf16), as mixed-precision training does on
	// GPUs.
	Precision string

	Normalization activations.Normalization // default expected_average_only_in
	BDecInit      string                    // "mean" (default), "median" (geometric) or "zero"
	DecInitNorm   float32                   // decoder row norm at init; default 0.1 (standard), 1 otherwise
	SkipBDecInput bool                      // do not subtract b_dec from the input (SAELens apply_b_dec_to_input = false)
	DecoderNorm   string                    // "unit" keeps decoder rows at unit norm, "free" does not; default free for standard, unit otherwise

	DeadWindow int // a latent is dead after this many samples without firing; default min(1e6, 2 epochs)

	// ResampleEvery re-initialises dead latents every this many steps in
	// the first half of the run (Bricken et al. 2023): each then points at
	// an input of the batch drawn with probability proportional to the
	// square of its squared reconstruction error; 0 turns it off.
	ResampleEvery int

	CheckpointEvery int    // steps between checkpoints; 0: only at the end
	Checkpoint      string // checkpoint file; "" disables checkpoints
	Resume          bool   // continue from Checkpoint, which must exist
}

// RISEPreset returns the training recipe of RISE (arXiv 2512.23988, §4):
// a ReLU SAE of width 2048, λ = 2e-3, batch 1024, Adam with lr 1e-4, linear
// warm-up over the first 10% of steps, then cosine decay. RISE's λ weighs an
// L1 term against a reconstruction error averaged over dimensions; rise sums
// the error over dimensions, so the preset reads λ per dimension
// (SparsityPerDim): on d_in 1536 it is 2e-3·1536 ≈ 3.1. At lr 1e-4 a ReLU
// SAE settles slowly, so the preset trains on 32 million rows unless told
// otherwise (on the planted demo dump at width 1024 it then recovers 83% of
// the planted directions; after 4 million rows, about 38%).
func RISEPreset() TrainConfig {
	return TrainConfig{Arch: Standard, Width: 2048, Sparsity: 2e-3, SparsityPerDim: true, Batch: 1024, LR: 1e-4,
		Warmup: 0.1, Decay: "cosine", Samples: 32_000_000}
}

// DefaultSamples is how many rows a run sees when neither Steps nor Epochs
// is given (at least one epoch): a few million, which SAEs of a few thousand
// latents need to settle, whatever the size of the dump.
const DefaultSamples = 4_000_000

// Defaults fills in the zero fields of c for a layer of rows of width dIn.
func (c TrainConfig) Defaults(dIn, rows int) TrainConfig {
	if c.Arch == "" {
		c.Arch = Standard
	}
	if c.Width == 0 {
		c.Width = 2048
	}
	if c.Batch == 0 {
		c.Batch = max(1, min(1024, rows)) // a small dump trains in whole-dump batches
	}
	if c.LR == 0 {
		c.LR = 1e-4
		if c.Arch != Standard {
			// 2e-3 at 1024 latents, scaled by 1/√width as Gao et al. (2024)
			// scale it.
			c.LR = min(4e-3, max(2e-4, 2e-3*math.Sqrt(1024/float64(c.Width))))
		}
	}
	if c.SparsityPerDim {
		c.Sparsity *= float32(dIn)
		c.SparsityPerDim = false
	}
	if c.Decay == "" {
		c.Decay = "cosine"
	}
	if c.Beta1 == 0 {
		c.Beta1 = 0.9
	}
	if c.Beta2 == 0 {
		c.Beta2 = 0.999
	}
	perEpoch := max(1, rows/max(1, min(c.Batch, rows)))
	if c.Steps == 0 {
		if c.Epochs > 0 {
			c.Steps = c.Epochs * perEpoch
		} else {
			if c.Samples == 0 {
				c.Samples = DefaultSamples
			}
			c.Steps = max(perEpoch, (c.Samples+c.Batch-1)/c.Batch)
		}
	}
	if c.AuxKCoeff == 0 && (c.Arch == TopK || c.Arch == BatchTopK) {
		c.AuxKCoeff = 1.0 / 32
	}
	if c.Bandwidth == 0 {
		c.Bandwidth = 0.001
	}
	if c.InitThreshold == 0 {
		c.InitThreshold = 0.001
	}
	if c.Sparsity == 0 && c.Arch == Standard {
		c.Sparsity = 2e-3
	}
	if c.EngineName == "" {
		c.EngineName = "fused"
	}
	if c.Precision == "" {
		c.Precision = "f32"
	}
	if c.Normalization == "" {
		c.Normalization = activations.NormMeanNorm
	}
	if c.BDecInit == "" {
		c.BDecInit = "mean"
	}
	if c.DecInitNorm == 0 {
		c.DecInitNorm = 0.1
		if c.Arch != Standard {
			c.DecInitNorm = 1
		}
	}
	if c.DecoderNorm == "" {
		c.DecoderNorm = "unit"
		if c.Arch == Standard {
			c.DecoderNorm = "free"
		}
	}
	if c.DeadWindow == 0 {
		c.DeadWindow = min(1_000_000, 2*rows)
	}
	if c.Seed == 0 {
		c.Seed = 1
	}
	return c
}

// maxMatrix bounds d_in × width: the engines index a weight matrix with
// 32-bit offsets in places, and a larger SAE is beyond what they train.
const maxMatrix = 1 << 31

// maxSteps bounds the optimiser steps of a run (and a run's epochs, times
// the steps per epoch): at a thousand steps a second 2^31 steps take 25
// days, and the step counters stay far from overflowing.
const maxSteps = math.MaxInt32

// Validate checks a filled-in configuration for a layer of rows of width
// dIn: every count and coefficient for its sign and range, without
// overflow, and the memory the run needs against what the system has. Its
// errors are the caller's (inputerr).
func (c TrainConfig) Validate(dIn, rows int) (err error) {
	defer func() { err = inputerr.Wrap(err) }()
	fraction := func(v float64) bool { return v >= 0 && v <= 1 } // false for NaN
	finite := func(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
	switch {
	case rows < 1:
		return errors.New("the layer has no rows to train on")
	case dIn < 1:
		return fmt.Errorf("d_in must be at least 1, got %d", dIn)
	case c.Width < 1:
		return fmt.Errorf("width must be at least 1, got %d", c.Width)
	case c.Width > maxMatrix/dIn:
		return fmt.Errorf("d_in %d × width %d is too large: expected at most %d weights per matrix (width up to %d)", dIn, c.Width, maxMatrix, maxMatrix/dIn)
	case c.K < 0:
		return fmt.Errorf("k must not be negative, got %d", c.K)
	case (c.Arch == TopK || c.Arch == BatchTopK) && (c.K < 1 || c.K > c.Width):
		return fmt.Errorf("%s needs k between 1 and the width %d, got %d", c.Arch, c.Width, c.K)
	case c.Batch < 1:
		return fmt.Errorf("batch must be at least 1, got %d", c.Batch)
	case c.Batch > rows:
		return fmt.Errorf("batch %d is larger than the %d rows of the data", c.Batch, rows)
	case c.Epochs < 0:
		return fmt.Errorf("epochs must not be negative, got %d", c.Epochs)
	case c.Epochs > maxSteps/max(1, rows/c.Batch):
		return fmt.Errorf("%d epochs of %d steps are more than %d steps", c.Epochs, max(1, rows/c.Batch), maxSteps)
	case c.Steps < 1:
		return fmt.Errorf("steps must be at least 1, got %d", c.Steps)
	case c.Steps > maxSteps:
		return fmt.Errorf("steps must be at most %d, got %d", maxSteps, c.Steps)
	case c.Samples < 0:
		return fmt.Errorf("samples must not be negative, got %d", c.Samples)
	case !(c.LR > 0) || !finite(c.LR):
		return fmt.Errorf("learning rate must be a positive number, got %v", c.LR)
	case !fraction(c.Warmup) || c.Warmup == 1:
		return fmt.Errorf("warm-up must be a fraction in [0, 1), got %v", c.Warmup)
	case !fraction(c.SparsityWarmup):
		return fmt.Errorf("sparsity warm-up must be a fraction in [0, 1], got %v", c.SparsityWarmup)
	case c.Decay != "cosine" && c.Decay != "constant":
		return fmt.Errorf("decay must be cosine or constant, got %q", c.Decay)
	case !(c.Sparsity >= 0) || !finite(float64(c.Sparsity)):
		return fmt.Errorf("sparsity coefficient λ must be a finite number ≥ 0, got %v", c.Sparsity)
	case !(c.ClipNorm >= 0) || !finite(c.ClipNorm):
		return fmt.Errorf("clip norm must be a finite number ≥ 0 (0: off), got %v", c.ClipNorm)
	case !(c.AuxKCoeff >= 0) || !finite(float64(c.AuxKCoeff)):
		return fmt.Errorf("AuxK coefficient must be a finite number ≥ 0, got %v", c.AuxKCoeff)
	case c.ResampleEvery < 0:
		return fmt.Errorf("resample every: expected a number of steps ≥ 0 (0: never), found %d", c.ResampleEvery)
	case c.ResampleEvery > 0 && c.Arch == BatchTopK:
		// Measured on planted dumps, it leaves more latents dead and the
		// reconstruction worse: the batch threshold is learnt over them.
		return fmt.Errorf("resample every: batchtopk does not resample (AuxK revives its latents); use topk, standard or jumprelu")
	case c.AuxKLatents < 0:
		return fmt.Errorf("AuxK latents must not be negative, got %d", c.AuxKLatents)
	case !(c.Bandwidth > 0) || !finite(float64(c.Bandwidth)):
		return fmt.Errorf("JumpReLU bandwidth must be a positive number, got %v", c.Bandwidth)
	case !(c.InitThreshold > 0) || !finite(float64(c.InitThreshold)):
		return fmt.Errorf("JumpReLU initial threshold must be a positive number, got %v", c.InitThreshold)
	case !(c.DecInitNorm > 0) || !finite(float64(c.DecInitNorm)):
		return fmt.Errorf("decoder init norm must be a positive number, got %v", c.DecInitNorm)
	case !fraction(c.Beta1) || c.Beta1 == 1 || !fraction(c.Beta2) || c.Beta2 == 1:
		return fmt.Errorf("Adam's β1 and β2 must be fractions in [0, 1), got %v and %v", c.Beta1, c.Beta2)
	case c.DeadWindow < 1:
		return fmt.Errorf("dead window must be at least 1 sample, got %d", c.DeadWindow)
	case c.CheckpointEvery < 0:
		return fmt.Errorf("checkpoint interval must not be negative (0: only at the end), got %d", c.CheckpointEvery)
	case c.EngineName != "fused" && c.EngineName != "graph":
		return fmt.Errorf("engine must be fused or graph, got %q", c.EngineName)
	case c.Precision != "f32" && c.Precision != "bf16":
		return fmt.Errorf("precision must be f32 or bf16, got %q", c.Precision)
	case c.Precision == "bf16" && c.EngineName != "fused":
		return fmt.Errorf("precision bf16 is the fused engine's, not the %s engine's", c.EngineName)
	case c.Precision == "bf16" && !bf16.Native():
		return errors.New("precision bf16 needs a CPU with AVX512_BF16; this one has none (use f32)")
	case c.DecoderNorm != "unit" && c.DecoderNorm != "free":
		return fmt.Errorf("decoder norm must be unit or free, got %q", c.DecoderNorm)
	case c.BDecInit != "mean" && c.BDecInit != "median" && c.BDecInit != "zero":
		return fmt.Errorf("b_dec init must be mean, median or zero, got %q", c.BDecInit)
	}
	return checkMemory(c.trainingBytes(dIn), fmt.Sprintf("training a %s SAE of width %d on d_in %d with batch %d: its weights, gradients, Adam moments and batch buffers", c.Arch, c.Width, dIn, c.Batch))
}

// TrainEvent reports a training run's progress. The terminal progress bar
// and the web UI both subscribe to these.
type TrainEvent struct {
	Step, Steps   int
	Epoch         int
	Loss          Loss
	LR            float64
	Sparsity      float32 // λ at this step
	DeadFraction  float64 // latents without a firing in the last DeadWindow samples
	SamplesPerSec float64
	Elapsed       time.Duration
	Checkpointed  bool // a checkpoint was written after this step
}

// TrainResult summarises a finished run.
type TrainResult struct {
	Config       TrainConfig
	Steps        int
	ResumedFrom  int // the step a resumed run started at (0 when fresh)
	Final        Loss
	DeadFraction float64
	Resampled    int // latents re-initialised by resampling
	Elapsed      time.Duration
	Samples      int64
}

// Record is what cfg.json's metadata (rise_training) and rise train --json
// record of a run.
func (r *TrainResult) Record() map[string]any {
	c := r.Config
	return map[string]any{
		"architecture": c.Arch, "width": c.Width, "k": c.K, "sparsity": c.Sparsity, "sparsity_warmup": c.SparsityWarmup,
		"auxk_coefficient": c.AuxKCoeff, "batch": c.Batch, "lr": c.LR, "warmup": c.Warmup, "decay": c.Decay,
		"clip_norm": c.ClipNorm, "steps": r.Steps, "seed": c.Seed, "engine": c.EngineName, "precision": c.Precision,
		"normalization": c.Normalization, "b_dec_init": c.BDecInit, "decoder_norm": c.DecoderNorm,
		"resumed_from": r.ResumedFrom, "final_loss": r.Final.Total, "final_mse": r.Final.MSE, "final_l0": r.Final.L0,
		"dead_fraction": r.DeadFraction, "resample_every": c.ResampleEvery, "resampled": r.Resampled, "seconds": r.Elapsed.Seconds(), "samples": r.Samples,
	}
}

// Train trains an SAE on a layer. Rows are shuffled with the seed, one
// permutation per epoch; the same seed and data give the same SAE. With a
// checkpoint file configured, the run is saved every CheckpointEvery steps
// and at the end, atomically; a resumed run continues to the same result as
// an unbroken one. Cancelling ctx stops it after the current step (with a
// checkpoint, so nothing is lost). onEvent, when not nil, is called after
// every step.
func Train(ctx context.Context, layer *activations.Layer, cfg TrainConfig, onEvent func(TrainEvent)) (*SAE, *TrainResult, error) {
	cfg = cfg.Defaults(layer.DModel, layer.Rows)
	if err := cfg.Validate(layer.DModel, layer.Rows); err != nil {
		return nil, nil, err
	}
	t, err := newTrainer(ctx, layer, cfg)
	if err != nil {
		return nil, nil, err
	}
	return t.run(ctx, onEvent)
}

type trainer struct {
	layer  *activations.Layer
	cfg    TrainConfig
	s      *SAE
	eng    Engine
	g      *Gradients
	opt    *adam
	logThr []float32 // JumpReLU parameter: log θ

	step         int
	sinceFired   []int64 // samples since each latent last fired
	fired        []int64
	dead         []bool
	thrEMA       float64 // BatchTopK running threshold
	thrSeen      bool
	samples      int64
	resumedFrom  int
	stepsPerEpoc int
	resampled    int // latents re-initialised so far
}

func newTrainer(ctx context.Context, layer *activations.Layer, cfg TrainConfig) (*trainer, error) {
	t := &trainer{layer: layer, cfg: cfg, stepsPerEpoc: layer.Rows / cfg.Batch}
	switch cfg.EngineName {
	case "graph":
		t.eng = NewGraphEngine()
	default:
		t.eng = &fusedEngine{bf16: cfg.Precision == "bf16"}
	}
	if cfg.Resume {
		if cfg.Checkpoint == "" {
			return nil, errors.New("resume: no checkpoint file is configured to resume from")
		}
		ok, err := t.loadCheckpoint()
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("resume: there is no checkpoint at %s to continue from (the run wrote none, or it was removed): start the run afresh", cfg.Checkpoint)
		}
		return t, nil
	}
	s, err := New(cfg.Arch, layer.DModel, cfg.Width, cfg.K)
	if err != nil {
		return nil, err
	}
	s.ApplyBDecToInput = !cfg.SkipBDecInput
	stats, err := layer.Stats(ctx, nil)
	if err != nil {
		return nil, err
	}
	if stats.MaxNorm == 0 {
		return nil, fmt.Errorf("%s: every one of the %d rows of layer %s is zero: expected activations to train on", layerFiles(layer), stats.Rows, layer.Name)
	}
	norm, err := activations.NewNormalizer(cfg.Normalization, stats)
	if err != nil {
		return nil, fmt.Errorf("%s: layer %s: %w", layerFiles(layer), layer.Name, err)
	}
	s.InputScale, s.Normalization = norm.Scale, norm.Mode
	var bDec []float32
	switch cfg.BDecInit {
	case "mean":
		bDec = make([]float32, layer.DModel)
		for i, m := range stats.Mean {
			bDec[i] = float32(m) * s.InputScale
		}
	case "median":
		med, err := GeometricMedian(ctx, layer, 10000, cfg.Seed)
		if err != nil {
			return nil, err
		}
		bDec = make([]float32, layer.DModel)
		for i, m := range med {
			bDec[i] = float32(m) * s.InputScale
		}
	}
	s.Init(cfg.Seed, cfg.DecInitNorm, bDec, cfg.InitThreshold)
	if cfg.unitNorm() {
		normaliseRows(s.WDec, s.DSae, s.DIn)
	}
	t.s = s
	t.init()
	return t, nil
}

// layerFiles names the files a layer's rows are read from, for errors: the
// shard, or the first shard and how many follow it.
func layerFiles(l *activations.Layer) string {
	shards := l.Shards()
	switch len(shards) {
	case 0:
		return "layer " + l.Name
	case 1:
		return shards[0]
	}
	return fmt.Sprintf("%s (and %d more shards)", shards[0], len(shards)-1)
}

// init sets up the optimiser and the dead-latent counters for t.s.
func (t *trainer) init() {
	s := t.s
	t.g = NewGradients(s)
	params := [][]float32{s.WEnc, s.WDec, s.BEnc, s.BDec}
	if s.Arch == JumpReLU {
		if t.logThr == nil {
			t.logThr = make([]float32, s.DSae)
			for j, v := range s.Threshold {
				t.logThr[j] = float32(math.Log(float64(v)))
			}
		}
		params = append(params, t.logThr)
	}
	if t.opt == nil {
		t.opt = newAdam(params, t.cfg.Beta1, t.cfg.Beta2)
	}
	if t.sinceFired == nil {
		t.sinceFired = make([]int64, s.DSae)
	}
	t.fired = make([]int64, s.DSae)
	t.dead = make([]bool, s.DSae)
}

func (c TrainConfig) unitNorm() bool { return c.DecoderNorm == "unit" }

func (t *trainer) grads() [][]float32 {
	g := [][]float32{t.g.WEnc, t.g.WDec, t.g.BEnc, t.g.BDec}
	if t.s.Arch == JumpReLU {
		g = append(g, t.g.LogThreshold)
	}
	return g
}

// lr returns the learning rate at step (0-based): linear warm-up, then
// cosine decay to zero or constant.
func (t *trainer) lr(step int) float64 {
	c := t.cfg
	warm := int(c.Warmup * float64(c.Steps))
	if step < warm {
		return c.LR * float64(step+1) / float64(warm)
	}
	if c.Decay == "constant" {
		return c.LR
	}
	rest := max(1, c.Steps-warm)
	p := float64(step-warm) / float64(rest)
	return c.LR * 0.5 * (1 + math.Cos(math.Pi*p))
}

// sparsity returns λ at step with its linear warm-up.
func (t *trainer) sparsity(step int) float32 {
	c := t.cfg
	w := int(c.SparsityWarmup * float64(c.Steps))
	if step < w {
		return c.Sparsity * float32(step+1) / float32(w)
	}
	return c.Sparsity
}

func (t *trainer) run(ctx context.Context, onEvent func(TrainEvent)) (*SAE, *TrainResult, error) {
	cfg := t.cfg
	start := time.Now()
	startStep := t.step
	var last Loss
	for t.step < cfg.Steps {
		epoch := t.step / t.stepsPerEpoc
		it := t.batches(epoch)
		if skip := t.step - epoch*t.stepsPerEpoc; skip > 0 && !it.Skip(skip) {
			return nil, nil, fmt.Errorf("resuming at step %d: the data has fewer batches than the checkpoint expects", t.step)
		}
		for t.step < cfg.Steps && it.Next(ctx) {
			loss, err := t.update(it.X())
			if err != nil {
				return nil, nil, err
			}
			last = loss
			t.step++
			ckpt := false
			if cfg.Checkpoint != "" && cfg.CheckpointEvery > 0 && t.step%cfg.CheckpointEvery == 0 && t.step < cfg.Steps {
				if err := t.saveCheckpoint(); err != nil {
					return nil, nil, err
				}
				ckpt = true
			}
			if onEvent != nil {
				el := time.Since(start)
				onEvent(TrainEvent{
					Step: t.step, Steps: cfg.Steps, Epoch: epoch, Loss: loss, LR: t.lr(t.step - 1),
					Sparsity: t.sparsity(t.step - 1), DeadFraction: t.deadFraction(),
					SamplesPerSec: float64((t.step-startStep)*cfg.Batch) / el.Seconds(), Elapsed: el, Checkpointed: ckpt,
				})
			}
			if ctx.Err() != nil {
				break
			}
		}
		if err := it.Err(); err != nil && !errors.Is(err, ctx.Err()) {
			return nil, nil, err
		}
		if err := ctx.Err(); err != nil {
			if cfg.Checkpoint != "" {
				if cerr := t.saveCheckpoint(); cerr != nil {
					return nil, nil, errors.Join(err, cerr)
				}
			}
			return nil, nil, err
		}
	}
	if cfg.Checkpoint != "" {
		if err := t.saveCheckpoint(); err != nil {
			return nil, nil, err
		}
	}
	out := t.s.Clone()
	if out.Arch == BatchTopK {
		for j := range out.Threshold {
			out.Threshold[j] = float32(t.thrEMA)
		}
	}
	res := &TrainResult{Config: cfg, Steps: t.step, ResumedFrom: t.resumedFrom, Final: last,
		DeadFraction: t.deadFraction(), Resampled: t.resampled, Elapsed: time.Since(start), Samples: t.samples}
	return out, res, nil
}

// batches starts the walk over the rows of epoch: a permutation of its own
// fixed by the seed.
func (t *trainer) batches(epoch int) *activations.Batches {
	return t.layer.Batches(activations.BatchOptions{Size: t.cfg.Batch, Shuffle: true, Seed: t.cfg.Seed + uint64(epoch)*0x9e37, DropLast: true})
}

// rowOrder returns the layer rows a fresh run's steps read, in order:
// cfg.Steps batches of cfg.Batch rows, without reading the rows.
func (t *trainer) rowOrder(ctx context.Context) ([]int64, error) {
	cfg := t.cfg
	out := make([]int64, 0, cfg.Steps*cfg.Batch)
	for epoch := 0; len(out) < cap(out); epoch++ {
		it := t.batches(epoch)
		for len(out) < cap(out) && it.Skip(1) {
			for _, r := range it.Rows() {
				out = append(out, int64(r))
			}
		}
		if err := it.Err(); err != nil {
			return nil, err
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// update runs one optimiser step on batch x.
func (t *trainer) update(x []float32) (Loss, error) {
	s, cfg := t.s, t.cfg
	if s.Arch == JumpReLU {
		for j, v := range t.logThr {
			s.Threshold[j] = float32(math.Exp(float64(v)))
		}
	}
	for j := range t.dead {
		t.dead[j] = t.sinceFired[j] > int64(cfg.DeadWindow)
	}
	if cfg.ResampleEvery > 0 && t.step > 0 && t.step%cfg.ResampleEvery == 0 && t.step <= cfg.Steps/2 {
		t.resampled += t.resample(x)
	}
	clear(t.fired)
	lc := LossConfig{Sparsity: t.sparsity(t.step), AuxKCoeff: cfg.AuxKCoeff, AuxKLatents: cfg.AuxKLatents, Bandwidth: cfg.Bandwidth}
	loss, err := t.eng.Step(s, x, lc, t.dead, t.g, t.fired)
	if err != nil {
		return loss, err
	}
	if math.IsNaN(loss.Total) || math.IsInf(loss.Total, 0) {
		return loss, fmt.Errorf("training diverged at step %d: the loss is %v (lower the learning rate?)", t.step+1, loss.Total)
	}
	rows := int64(len(x) / s.DIn)
	t.samples += rows
	for j, n := range t.fired {
		if n > 0 {
			t.sinceFired[j] = 0
		} else {
			t.sinceFired[j] += rows
		}
	}
	if s.Arch == BatchTopK && loss.L0 > 0 {
		if !t.thrSeen {
			t.thrEMA, t.thrSeen = float64(loss.BatchThreshold), true
		} else {
			t.thrEMA = 0.99*t.thrEMA + 0.01*float64(loss.BatchThreshold)
		}
	}
	if cfg.unitNorm() {
		// Remove the gradient's component along each decoder row, so that
		// the step moves rows on the unit sphere (Gao et al. 2024, §A.4).
		removeParallel(t.g.WDec, s.WDec, s.DSae, s.DIn)
	}
	if cfg.ClipNorm > 0 {
		clipGlobalNorm(t.grads(), cfg.ClipNorm)
	}
	t.opt.step(t.grads(), t.lr(t.step))
	if cfg.unitNorm() {
		normaliseRows(s.WDec, s.DSae, s.DIn)
	}
	return loss, nil
}

func (t *trainer) deadFraction() float64 {
	n := 0
	for _, c := range t.sinceFired {
		if c > int64(t.cfg.DeadWindow) {
			n++
		}
	}
	return float64(n) / float64(len(t.sinceFired))
}
