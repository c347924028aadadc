package sae

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"github.com/rise-interp/rise/activations"
	"github.com/rise-interp/rise/internal/atomicfile"
	"github.com/rise-interp/rise/internal/matmul"
	"github.com/rise-interp/rise/internal/safetensors"
)

// RunBenchConfig sets up a whole-run benchmark: the RISE recipe
// (RISEPreset) trained for Steps steps on a layer of a real dump, timed from
// the first batch read to the last update.
type RunBenchConfig struct {
	Steps int    // optimiser steps
	Width int    // d_sae; 0: the recipe's 2048
	Seed  uint64 // 0: 1
	// Precision is that of the dense products (TrainConfig.Precision):
	// "" or "f32", or "bf16".
	Precision string

	// RefDir, when not empty, receives what a reference implementation
	// needs to repeat the run exactly (see WriteRunReference): the initial
	// weights, the input scale and the row order.
	RefDir string

	// Progress, when not nil, is called after every step with the steps
	// done and the steps in all.
	Progress func(done, total int)
}

// RunBenchResult is one implementation's whole training run. Its JSON keys
// are those testdata/bench/torch_run.py prints.
type RunBenchResult struct {
	Engine string `json:"engine"`
	// Precision is rise's dense products', "f32" or "bf16"; PyTorch's
	// reference leaves it out (float32 throughout).
	Precision string  `json:"precision,omitempty"`
	Arch      string  `json:"arch"` // "relu"
	DIn       int     `json:"d_in"`
	DSae      int     `json:"d_sae"`
	Batch     int     `json:"batch"`
	Steps     int     `json:"steps"`
	Seconds   float64 `json:"seconds"` // the whole run: reading rows, steps and updates
	// CPUSeconds is the CPU time the run took (all threads; 0 where the
	// system does not say): on a machine shared with other work it varies
	// less than Seconds.
	CPUSeconds  float64 `json:"cpu_seconds,omitempty"`
	SamplesPerS float64 `json:"samples_per_s"`
	FinalLoss   float64 `json:"final_loss"` // the loss of the last step's batch, before its update
	FinalMSE    float64 `json:"final_mse"`
	FinalL0     float64 `json:"final_l0"`
	// ActiveSteps counts the steps the fused engine ran over active
	// entries instead of dense products.
	ActiveSteps int `json:"active_steps"`
	// DenseStepS and ActiveStepS are the mean wall-clock seconds of the
	// dense steps and of the steps over active entries (0 when none ran),
	// each with its batch's reading and update.
	DenseStepS  float64 `json:"dense_step_s,omitempty"`
	ActiveStepS float64 `json:"active_step_s,omitempty"`
	BLAS        string  `json:"blas,omitempty"`
	Threads     int     `json:"threads"`
}

// Reference files a whole-run benchmark writes for the PyTorch reference.
const (
	RunRefWeights = "init.safetensors" // W_enc, W_dec, b_enc, b_dec at step 0, and the run's settings as metadata
	RunRefOrder   = "order.npy"        // int64 [steps·batch]: the layer row of each row of each batch
)

// RunTrainBench trains the RISE recipe for c.Steps steps on layer with the fused
// engine and reports the whole run's time and its final loss. Setting up
// (the pass over the data for the normalisation and b_dec, initialising
// the weights, writing the reference's files) is not timed. Cancelling ctx
// stops the run between steps with ctx's error.
func RunTrainBench(ctx context.Context, layer *activations.Layer, c RunBenchConfig) (RunBenchResult, error) {
	if c.Steps < 1 {
		return RunBenchResult{}, fmt.Errorf("sae: bench run: at least one step is needed, got %d", c.Steps)
	}
	cfg := RISEPreset()
	cfg.Steps, cfg.Seed, cfg.Precision = c.Steps, c.Seed, c.Precision
	if c.Width > 0 {
		cfg.Width = c.Width
	}
	cfg = cfg.Defaults(layer.DModel, layer.Rows)
	if err := cfg.Validate(layer.DModel, layer.Rows); err != nil {
		return RunBenchResult{}, fmt.Errorf("sae: bench run on %s: %w", layerFiles(layer), err)
	}
	t, err := newTrainer(ctx, layer, cfg)
	if err != nil {
		return RunBenchResult{}, err
	}
	if c.RefDir != "" {
		if err := t.writeReference(ctx, c.RefDir); err != nil {
			return RunBenchResult{}, err
		}
	}
	fused, _ := t.eng.(*fusedEngine)
	cpu0, cpuOK := processCPU()
	active := 0
	var activeSec, denseSec, last float64
	_, res, err := t.run(ctx, func(ev TrainEvent) {
		el := ev.Elapsed.Seconds()
		if fused != nil && fused.lastSparse {
			active++
			activeSec += el - last
		} else {
			denseSec += el - last
		}
		last = el
		if c.Progress != nil {
			c.Progress(ev.Step, ev.Steps)
		}
	})
	if err != nil {
		return RunBenchResult{}, err
	}
	sec := res.Elapsed.Seconds()
	cpu := 0.0
	if cpu1, ok := processCPU(); ok && cpuOK {
		cpu = cpu1 - cpu0
	}
	return RunBenchResult{
		Engine: cfg.EngineName, Precision: cfg.Precision, Arch: BenchArchName(cfg.Arch), DIn: layer.DModel, DSae: cfg.Width, Batch: cfg.Batch,
		Steps: res.Steps, Seconds: sec, CPUSeconds: cpu, SamplesPerS: float64(res.Samples) / sec,
		FinalLoss: res.Final.Total, FinalMSE: res.Final.MSE, FinalL0: res.Final.L0, ActiveSteps: active,
		DenseStepS: meanOf(denseSec, res.Steps-active), ActiveStepS: meanOf(activeSec, active),
		BLAS: matmul.BLASName, Threads: runtime.GOMAXPROCS(0),
	}, nil
}

// writeReference writes into dir what a reference needs to repeat t's run:
// RunRefWeights with the initial parameters and, as metadata, the input
// scale, λ, the learning rate and its schedule, the batch, the steps, Adam's
// settings and the layer's shards (a JSON list of .npy paths); RunRefOrder
// with the row order of every step.
func (t *trainer) writeReference(ctx context.Context, dir string) error {
	s, cfg := t.s, t.cfg
	if cfg.Arch != Standard || cfg.DecoderNorm != "free" || cfg.SparsityWarmup != 0 || cfg.ClipNorm != 0 {
		return errors.New("sae: bench run: the reference repeats only a standard SAE with a free decoder, no sparsity warm-up and no clipping")
	}
	shards := t.layer.Shards()
	for _, sh := range shards {
		if !strings.HasSuffix(sh, ".npy") {
			return fmt.Errorf("sae: bench run: the reference reads .npy shards, but layer %s is stored in %s", t.layer.Name, sh)
		}
	}
	order, err := t.rowOrder(ctx)
	if err != nil {
		return err
	}
	shardJSON, err := json.Marshal(shards)
	if err != nil {
		return err
	}
	f := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	meta := map[string]string{
		"input_scale":      f(float64(s.InputScale)),
		"apply_b_dec":      strconv.FormatBool(s.ApplyBDecToInput),
		"l1":               f(float64(cfg.Sparsity)),
		"lr":               f(cfg.LR),
		"warmup_steps":     strconv.Itoa(int(cfg.Warmup * float64(cfg.Steps))),
		"decay":            cfg.Decay,
		"beta1":            f(cfg.Beta1),
		"beta2":            f(cfg.Beta2),
		"adam_eps":         "1e-08",
		"steps":            strconv.Itoa(cfg.Steps),
		"batch":            strconv.Itoa(cfg.Batch),
		"shards":           string(shardJSON),
		"rows":             strconv.Itoa(t.layer.Rows),
		"architecture":     string(cfg.Arch),
		"decoder_norm":     cfg.DecoderNorm,
		"sparsity_warmup":  f(cfg.SparsityWarmup),
		"clip_norm":        f(cfg.ClipNorm),
		"reference_format": "rise-bench-run/1",
	}
	d, m := s.DIn, s.DSae
	tensors := []safetensors.Tensor{
		{Name: "W_enc", Shape: []int{d, m}, Data: s.WEnc},
		{Name: "W_dec", Shape: []int{m, d}, Data: s.WDec},
		{Name: "b_enc", Shape: []int{m}, Data: s.BEnc},
		{Name: "b_dec", Shape: []int{d}, Data: s.BDec},
	}
	if err := safetensors.Write(filepath.Join(dir, RunRefWeights), tensors, "float32", meta); err != nil {
		return err
	}
	return writeNpyInt64(filepath.Join(dir, RunRefOrder), order)
}

// writeNpyInt64 writes v as a one-dimensional little-endian int64 .npy
// file (format version 1.0), atomically.
func writeNpyInt64(path string, v []int64) error {
	hdr := fmt.Sprintf("{'descr': '<i8', 'fortran_order': False, 'shape': (%d,), }", len(v))
	// Magic, version, header length, then the header padded with spaces
	// and ended by a newline so that the data starts at a multiple of 64.
	pad := 64 - (10+len(hdr)+1)%64
	hdr += strings.Repeat(" ", pad%64) + "\n"
	buf := make([]byte, 0, 10+len(hdr)+8*len(v))
	buf = append(buf, "\x93NUMPY\x01\x00"...)
	buf = binary.LittleEndian.AppendUint16(buf, uint16(len(hdr)))
	buf = append(buf, hdr...)
	for _, x := range v {
		buf = binary.LittleEndian.AppendUint64(buf, uint64(x))
	}
	if err := atomicfile.Write(path, buf); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// meanOf is sum/n, or 0 when n is 0.
func meanOf(sum float64, n int) float64 {
	if n == 0 {
		return 0
	}
	return sum / float64(n)
}
