package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/rise-interp/rise/internal/matmul"
	"github.com/rise-interp/rise/sae"
)

// benchPreset is one configuration rise bench measures.
type benchPreset struct {
	name                string // "relu" or "topk", the reference's names
	arch                sae.Arch
	dIn, dSae, batch, k int
	steps, warmup       int // the default timed and warm-up steps
}

// benchPresets are the configurations of the speed comparison: RISE's ReLU
// SAE, and a wide TopK SAE.
var benchPresets = []benchPreset{
	{name: "relu", arch: sae.Standard, dIn: 1536, dSae: 2048, batch: 1024, steps: 10, warmup: 2},
	{name: "topk", arch: sae.TopK, dIn: 1536, dSae: 16384, batch: 4096, k: 32, steps: 3, warmup: 1},
}

// Defaults for the graph engine, which is slower than the fused one: fewer
// steps, and on configurations whose [batch, d_sae] activations exceed
// graphLarge values (topk's take gigabytes and a step about 25 s on two
// cores with OpenBLAS) one timed step.
const (
	graphSteps  = 3
	graphWarmup = 1
	graphLarge  = 1 << 24
)

// defaultTorchScript is where the PyTorch reference lives in a checkout of
// the project next to shared/.
const defaultTorchScript = "../shared/bench/torch_sae_ref.py"

// benchRow is one engine's result on one configuration, as --json prints it.
type benchRow struct {
	sae.BenchResult
	// TorchRatio is samples_per_s over PyTorch's on the same configuration
	// in the same run; absent when PyTorch was not run.
	TorchRatio *float64 `json:"torch_ratio,omitempty"`
}

// benchJob is one measurement to make.
type benchJob struct {
	preset        benchPreset
	engine        string // "fused", "graph" or "torch"
	steps, warmup int
}

// optionalInt is an integer flag that knows whether it was given.
type optionalInt struct {
	v   int
	set bool
}

func (o *optionalInt) String() string {
	if o == nil || !o.set {
		return ""
	}
	return strconv.Itoa(o.v)
}

func (o *optionalInt) Set(s string) error {
	v, err := strconv.Atoi(s)
	if err != nil {
		return fmt.Errorf("expected an integer, found %q", s)
	}
	o.v, o.set = v, true
	return nil
}

// torchRef is a runnable PyTorch reference: the interpreter and the script.
type torchRef struct{ python, script string }

func init() {
	var (
		jsonOut                     bool
		engineSel, configSel, torch string
		steps, threads              int
		warmup                      optionalInt
		dIn, dSae, batch, k         int
		mf                          modelFlags
		mb                          modelBench
		runData, precision          string
		runLayer                    int
	)
	register(&command{
		name:    "bench",
		noArgs:  true,
		summary: "measure the training engines' speed and compare it with PyTorch",
		usage:   "[--json] [--engine fused|graph|all] [--config relu|topk|all] [--steps N] [--torch PATH] [--threads N] | --run DUMP [--layer L] [--steps N] [--d-sae M] [--precision f32|bf16|f32,bf16|all] | --model PATH [--dtype D] [--quant q8] [--decode N] [--prompt-len N] [--batch N] [--reps N]",
		help: `Trains SAEs for a few steps on random Gaussian data and reports samples
per second, GFLOP/s and seconds per step for each engine and configuration:

	relu  d_in 1536, d_sae 2048, batch 1024 (RISE's ReLU SAE, L1 λ 2e-3)
	topk  d_in 1536, d_sae 16384, batch 4096, k 32 (no AuxK)

A step is the engine's forward and backward pass and an Adam update (lr
1e-4) of every parameter; the warm-up steps before the timed ones are not
counted. GFLOP/s count 6·B·d_in·d_sae FLOPs a step, or 4·B·d_in·d_sae for
the fused engine's TopK with its sparse decoder.

The work is that of the PyTorch reference, ../shared/bench/torch_sae_ref.py
(or --torch PATH; --torch off skips it), which runs in the same invocation
with the same thread count when python3 can import torch. Its results are
added with engine "torch", and every rise result gets torch_ratio, its
samples per second over PyTorch's.

The graph engine is slower: by default it runs 3 steps after 1 warm-up
step, and only 1 on the topk configuration, where its activations take
about 4 GB and a step tens of seconds. --threads sets GOMAXPROCS, which
bounds the engines' parallel work, and PyTorch's thread count. --d-in,
--d-sae, --batch and --k override the sizes of every configuration chosen,
for quick runs.

With --run DUMP, rise bench times a whole training run instead: the RISE
recipe (rise train --preset rise: ReLU, d_sae 2048 or --d-sae, L1 λ 2e-3
per dimension, batch 1024, Adam lr 1e-4, 10% warm-up then cosine decay)
for --steps steps (default 1000) on a layer of the dump (--layer), from the
first batch read to the last update, and reports samples per second, the
run's seconds and the final loss. The PyTorch reference
testdata/bench/torch_run.py (or --torch PATH) then repeats the run
SAELens-style from the same initial weights on the same rows in the same
order, with the same schedule and thread count; the table gives rise's
speed over PyTorch's and the two final losses. "active steps" counts the
steps the fused engine ran over active entries only, once the SAE had
turned sparse. --precision bf16 runs rise's dense products in bfloat16
with float32 sums (CPUs with AVX512_BF16); --precision all times float32
and then bfloat16 (where the CPU has it) in the same run, beside one
PyTorch run.

With --model, rise bench measures the model runtime instead: greedy
decoding of --batch sequences for --decode tokens after a one-token
prompt, and reading a prompt of --prompt-len tokens in one forward pass,
each --reps times on fresh sequences (tokens per second: the median, the
smallest and the largest). --dtype and --quant choose the precision the
weights are held in. make bench-runtime runs it beside llama.cpp on the
same model, thread count and machine.

Examples:

	rise bench
	rise bench --json --engine fused --config topk --steps 5
	rise synth --out /tmp/d1536 --rows 65536 --d-model 1536 --features 4096
	rise bench --run /tmp/d1536
	rise bench --run /tmp/d1536 --precision all
	rise bench --model DIR --dtype bf16 --decode 128 --prompt-len 512`,
		setFlags: func(fs *flag.FlagSet) {
			fs.BoolVar(&jsonOut, "json", false, "print a JSON array, one object per engine and configuration")
			fs.StringVar(&engineSel, "engine", "all", "engine to measure: fused, graph or all")
			fs.StringVar(&configSel, "config", "all", "configuration: relu, topk or all")
			fs.IntVar(&steps, "steps", 0, "timed steps per measurement (default: 10 relu, 3 topk; graph 3 relu, 1 topk)")
			warmup = optionalInt{}
			fs.Var(&warmup, "warmup", "`N` untimed steps before the timed ones (default: 2 relu, 1 topk and graph)")
			fs.StringVar(&torch, "torch", "", "PyTorch reference script, or off (default "+defaultTorchScript+" when present)")
			fs.IntVar(&threads, "threads", 0, "threads for rise (GOMAXPROCS) and PyTorch (default GOMAXPROCS)")
			fs.IntVar(&dIn, "d-in", 0, "override d_in of every configuration")
			fs.IntVar(&dSae, "d-sae", 0, "override d_sae of every configuration")
			fs.IntVar(&batch, "batch", 0, "override the batch of every configuration; with --model, the sequences decoded together (default 1)")
			fs.IntVar(&k, "k", 0, "override k of the topk configuration")
			fs.StringVar(&runData, "run", "", "time a whole RISE-recipe training run on this dump (beside PyTorch) instead of single steps")
			fs.IntVar(&runLayer, "layer", -1, "with --run: layer of the dump (default: its only layer)")
			fs.StringVar(&precision, "precision", "f32", "with --run: precision of rise's dense products, f32 or bf16 (bfloat16 inputs, float32 sums; CPUs with AVX512_BF16), both as f32,bf16, or all (bf16 too where the CPU has it)")
			fs.StringVar(&mf.model, "model", "", "measure the model runtime on this model (a Hugging Face directory or a llama2.c checkpoint) instead of the SAE engines")
			mf.setPrecision(fs)
			fs.IntVar(&mb.decode, "decode", 128, "with --model: greedy decoding steps timed")
			fs.IntVar(&mb.promptLen, "prompt-len", 512, "with --model: the length of the prompt read in one pass (0 skips it)")
			fs.IntVar(&mb.reps, "reps", 3, "with --model: repetitions of each measurement")
		},
		run: func(ctx context.Context, e *env, fs *flag.FlagSet) error {
			if mf.model != "" {
				mb.batch, mb.threads = max(1, batch), threads
				if batch < 0 {
					mb.batch = batch
				}
				return runModelBench(ctx, e.stdout, &mf, mb, jsonOut)
			}
			if mf.dtype != "" || mf.quant != "" {
				return usagef("--dtype and --quant apply to --model")
			}
			if runData != "" {
				return benchRunCommand(ctx, e, fs, runBenchArgs{data: runData, layer: runLayer, steps: steps, width: dSae, threads: threads, torch: torch, jsonOut: jsonOut, precision: precision})
			}
			if precision != "f32" {
				return usagef("--precision applies to --run")
			}
			if runLayer != -1 {
				return usagef("--layer applies to --run")
			}
			var engines []string
			switch engineSel {
			case "fused", "graph":
				engines = []string{engineSel}
			case "all":
				engines = []string{"fused", "graph"}
			default:
				return usagef("--engine must be fused, graph or all, got %q", engineSel)
			}
			var presets []benchPreset
			for _, p := range benchPresets {
				if configSel == "all" || configSel == p.name {
					presets = append(presets, p)
				}
			}
			if len(presets) == 0 {
				return usagef("--config must be relu, topk or all, got %q", configSel)
			}
			for _, f := range []struct {
				name string
				v    int
			}{{"--steps", steps}, {"--warmup", warmup.v}, {"--threads", threads}, {"--d-in", dIn}, {"--d-sae", dSae}, {"--batch", batch}, {"--k", k}} {
				if f.v < 0 {
					return usagef("%s must not be negative, got %d", f.name, f.v)
				}
			}
			for i := range presets {
				p := &presets[i]
				setInt(&p.dIn, dIn)
				setInt(&p.dSae, dSae)
				setInt(&p.batch, batch)
				if p.arch == sae.TopK {
					setInt(&p.k, k)
					if p.k > p.dSae {
						return usagef("k %d is larger than d_sae %d", p.k, p.dSae)
					}
				}
			}
			if threads == 0 {
				threads = runtime.GOMAXPROCS(0)
			}
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(threads))

			var notes []string
			ref, note, err := findTorch(ctx, torch, defaultTorchScript)
			if err != nil {
				return err
			}
			if note != "" {
				notes = append(notes, note)
			}

			w := -1
			if warmup.set {
				w = warmup.v
			}
			jobs := planBench(presets, engines, ref != nil, steps, w)
			total := 0
			for _, j := range jobs {
				total += j.steps + j.warmup
			}

			bar := newProgress(e.stderr, "bench")
			defer bar.done()
			var out []any
			var rows []benchRow
			var torchRows []map[string]any
			done := 0
			for _, j := range jobs {
				p := j.preset
				label := j.engine + " " + p.name
				if j.engine == "torch" {
					bar.updateInfo(int64(done), int64(total), label)
					r, err := runTorch(ctx, ref, j, threads)
					if err != nil {
						if ctx.Err() != nil {
							return ctx.Err()
						}
						notes = append(notes, fmt.Sprintf("no PyTorch comparison for %s: %v", p.name, err))
						done += j.steps + j.warmup
						continue
					}
					done += j.steps + j.warmup
					torchSPS, _ := r["samples_per_s"].(float64)
					for i := range rows {
						if rows[i].Arch == p.name && rows[i].TorchRatio == nil {
							ratio := rows[i].SamplesPerS / torchSPS
							rows[i].TorchRatio = &ratio
						}
					}
					torchRows = append(torchRows, r)
					continue
				}
				base := done
				res, err := sae.RunBench(ctx, sae.BenchConfig{
					Engine: j.engine, Arch: p.arch, DIn: p.dIn, DSae: p.dSae, Batch: p.batch, K: p.k,
					Steps: j.steps, Warmup: j.warmup, Seed: 1,
					Progress: func(d, _ int) { bar.updateInfo(int64(base+d), int64(total), label) },
				})
				if err != nil {
					return fmt.Errorf("%s engine on %s: %w", j.engine, p.name, err)
				}
				done += j.steps + j.warmup
				rows = append(rows, benchRow{BenchResult: res})
			}
			bar.done()

			// The output follows the configurations: rise's engines, then
			// PyTorch's result.
			for _, p := range presets {
				for _, r := range rows {
					if r.Arch == p.name {
						out = append(out, r)
					}
				}
				for _, r := range torchRows {
					if r["arch"] == p.name {
						out = append(out, r)
					}
				}
			}
			if jsonOut {
				for _, n := range notes {
					fmt.Fprintf(e.stderr, "rise bench: %s\n", n)
				}
				enc := json.NewEncoder(e.stdout)
				enc.SetIndent("", "  ")
				if out == nil {
					out = []any{}
				}
				return enc.Encode(out)
			}
			printBenchTable(e.stdout, out, threads, ref, notes)
			return nil
		},
	})
}

// planBench lists the measurements to make: per configuration each engine,
// then PyTorch when withTorch. steps and warmup, when not negative (steps:
// positive), replace the defaults of every measurement.
func planBench(presets []benchPreset, engines []string, withTorch bool, steps, warmup int) []benchJob {
	var jobs []benchJob
	for _, p := range presets {
		for _, eng := range engines {
			j := benchJob{preset: p, engine: eng, steps: p.steps, warmup: p.warmup}
			if eng == "graph" {
				j.steps, j.warmup = graphSteps, graphWarmup
				if int64(p.batch)*int64(p.dSae) > graphLarge {
					j.steps = 1
				}
			}
			jobs = append(jobs, j)
		}
		if withTorch {
			jobs = append(jobs, benchJob{preset: p, engine: "torch", steps: p.steps, warmup: p.warmup})
		}
	}
	for i := range jobs {
		if steps > 0 {
			jobs[i].steps = steps
		}
		if warmup >= 0 {
			jobs[i].warmup = warmup
		}
	}
	return jobs
}

// findTorch locates the PyTorch reference. flagValue is --torch: "" looks for
// defaultScript and an interpreter that imports torch, and returns a
// note instead of a reference when either is missing; "off" disables the
// comparison; any other value is a script that must exist.
func findTorch(ctx context.Context, flagValue, defaultScript string) (*torchRef, string, error) {
	if flagValue == "off" || flagValue == "none" {
		return nil, "", nil
	}
	script, explicit := flagValue, flagValue != ""
	if !explicit {
		script = defaultScript
	}
	if st, err := os.Stat(script); err != nil || st.IsDir() {
		if explicit {
			return nil, "", usagef("--torch %s: expected the PyTorch reference script, found no such file", script)
		}
		return nil, fmt.Sprintf("no PyTorch reference at %s; skipped the comparison (give its path with --torch)", script), nil
	}
	var tried []string
	for _, py := range []string{"/usr/bin/python3", "python3"} {
		path, err := exec.LookPath(py)
		if err != nil {
			continue
		}
		tried = append(tried, path)
		if exec.CommandContext(ctx, path, "-c", "import torch").Run() == nil {
			return &torchRef{python: path, script: script}, "", nil
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	msg := "found no python3"
	if len(tried) > 0 {
		msg = "none of " + strings.Join(tried, ", ") + " can import torch"
	}
	if explicit {
		return nil, "", fmt.Errorf("--torch %s: expected python3 with PyTorch installed, but %s (on Debian: apt-get install python3-torch)", script, msg)
	}
	return nil, fmt.Sprintf("%s; skipped the PyTorch comparison (on Debian: apt-get install python3-torch)", msg), nil
}

// runTorch runs the reference on job j's configuration and returns its JSON
// object with engine "torch" and gflops by the cost model added.
func runTorch(ctx context.Context, ref *torchRef, j benchJob, threads int) (map[string]any, error) {
	p := j.preset
	args := []string{ref.script, "--arch", p.name,
		"--d-in", strconv.Itoa(p.dIn), "--d-sae", strconv.Itoa(p.dSae), "--batch", strconv.Itoa(p.batch),
		"--steps", strconv.Itoa(j.steps), "--warmup", strconv.Itoa(j.warmup), "--threads", strconv.Itoa(threads)}
	if p.arch == sae.TopK {
		args = append(args, "--k", strconv.Itoa(p.k))
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, ref.python, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%s %s: %v: %s", ref.python, ref.script, err, lastLine(stderr.String()))
	}
	line := lastLine(stdout.String())
	var r map[string]any
	if err := json.Unmarshal([]byte(line), &r); err != nil {
		return nil, fmt.Errorf("%s printed %q, expected one JSON object: %v", ref.script, line, err)
	}
	sps, _ := r["samples_per_s"].(float64)
	sec, _ := r["seconds_per_step"].(float64)
	if !(sps > 0) || !(sec > 0) {
		return nil, fmt.Errorf("%s printed %q, expected positive samples_per_s and seconds_per_step", ref.script, line)
	}
	if r["arch"] != p.name {
		return nil, fmt.Errorf("%s printed arch %v, expected %q", ref.script, r["arch"], p.name)
	}
	r["engine"] = "torch"
	r["gflops"] = sae.StepFLOPs("torch", p.arch, p.batch, p.dIn, p.dSae) / sec / 1e9
	return r, nil
}

// lastLine returns the last non-empty line of s.
func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return strings.TrimSpace(s)
}

// printBenchTable prints the results as a table, with each rise engine's
// speed relative to PyTorch's, and the notes below it.
func printBenchTable(w io.Writer, out []any, threads int, ref *torchRef, notes []string) {
	fmt.Fprintf(w, "BLAS %s, %d threads", matmul.BLASName, threads)
	if ref != nil {
		fmt.Fprintf(w, "; PyTorch reference %s run by %s", ref.script, ref.python)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "engine\tconfig\td_in\td_sae\tbatch\tk\tsamples/s\tGFLOP/s\ts/step\tvs torch\t\n")
	num := func(v any) float64 { f, _ := v.(float64); return f }
	for _, o := range out {
		var (
			engine, arch, kStr, ratio string
			d, m, b                   int
			sps, gf, sec              float64
		)
		kStr, ratio = "-", "-"
		switch r := o.(type) {
		case benchRow:
			engine, arch, d, m, b, sps, gf, sec = r.Engine, r.Arch, r.DIn, r.DSae, r.Batch, r.SamplesPerS, r.GFLOPS, r.SecondsPerStep
			if r.K > 0 {
				kStr = strconv.Itoa(r.K)
			}
			if r.TorchRatio != nil {
				ratio = fmt.Sprintf("%.2fx", *r.TorchRatio)
			}
		case map[string]any:
			engine, arch = "torch", fmt.Sprint(r["arch"])
			d, m, b = int(num(r["d_in"])), int(num(r["d_sae"])), int(num(r["batch"]))
			sps, gf, sec = num(r["samples_per_s"]), num(r["gflops"]), num(r["seconds_per_step"])
			if kv := num(r["k"]); kv > 0 {
				kStr = strconv.Itoa(int(kv))
			}
			ratio = "1.00x"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%s\t%.1f\t%.1f\t%.4f\t%s\t\n", engine, arch, d, m, b, kStr, sps, gf, sec, ratio)
	}
	tw.Flush()
	for _, n := range notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
}
