package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/rise-interp/rise/activations"
	"github.com/rise-interp/rise/internal/bf16"
	"github.com/rise-interp/rise/internal/matmul"
	"github.com/rise-interp/rise/sae"
)

// defaultTorchRunScript is the PyTorch reference of a whole training run,
// in the project's testdata (make bench runs from the repository root).
const defaultTorchRunScript = "testdata/bench/torch_run.py"

// defaultRunSteps is how many steps rise bench --run trains by default:
// enough for the L1 SAE to turn sparse, the regime most of a real run
// spends its time in (on a planted d_model 1536 dump, 719 of 1,000 steps
// ran over active entries; a 300-step run's schedule ends before any does).
const defaultRunSteps = 1000

// runBenchArgs are rise bench --run's settings.
type runBenchArgs struct {
	data         string
	layer        int
	steps, width int
	threads      int
	torch        string
	precision    string // of rise's dense products: f32, bf16, a list or all
	jsonOut      bool
}

// runRow is one implementation's whole run as --json prints it: rise's
// result gets torch_ratio (samples per second over PyTorch's) and
// loss_rel_diff ((rise - torch) / torch final loss) when PyTorch ran.
type runRow struct {
	sae.RunBenchResult
	TorchRatio  *float64 `json:"torch_ratio,omitempty"`
	LossRelDiff *float64 `json:"loss_rel_diff,omitempty"`
}

// runTrainBench trains the RISE recipe on a dump with rise's fused engine,
// then repeats the run with the PyTorch reference when it can, and prints
// both.
func runTrainBench(ctx context.Context, e *env, a runBenchArgs) error {
	precisions, skipped, err := runPrecisions(a.precision)
	if err != nil {
		return err
	}
	dump, err := activations.OpenContext(ctx, a.data)
	if err != nil {
		return err
	}
	defer dump.Close()
	l, _, err := chooseLayer(dump, a.layer, -1)
	if err != nil {
		return err
	}
	var notes []string
	ref, note, err := findTorch(ctx, a.torch, defaultTorchRunScript)
	if err != nil {
		return err
	}
	if note != "" {
		notes = append(notes, note)
	}
	refDir := ""
	if ref != nil {
		refDir, err = os.MkdirTemp("", "rise-bench-run-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(refDir)
	}
	if skipped != "" {
		notes = append(notes, skipped)
	}
	bar := newProgress(e.stderr, "bench run")
	defer bar.done()
	var rows []runRow
	for i, p := range precisions {
		dir := refDir
		if i > 0 {
			dir = "" // the same seed gives the same initial weights and rows
		}
		res, err := sae.RunTrainBench(ctx, l, sae.RunBenchConfig{
			Steps: a.steps, Width: a.width, Seed: 1, RefDir: dir, Precision: p,
			Progress: func(d, n int) { bar.updateInfo(int64(d), int64(n), "rise "+p) },
		})
		if err != nil {
			return err
		}
		rows = append(rows, runRow{RunBenchResult: res})
	}
	// PyTorch repeats each of rise's runs at the same precision (bf16:
	// its autocast), so that each ratio compares like with like; its runs
	// follow rise's in rows.
	riseRuns := len(rows)
	if ref == nil {
		riseRuns = 0
	}
	for i := range riseRuns {
		p := rows[i].Precision
		bar.updateInfo(0, 1, "torch "+p)
		tr, err := runTorchRun(ctx, ref, refDir, a.threads, p)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			notes = append(notes, fmt.Sprintf("no PyTorch comparison in %s: %v", p, err))
			continue
		}
		ratio := rows[i].SamplesPerS / tr.SamplesPerS
		diff := (rows[i].FinalLoss - tr.FinalLoss) / tr.FinalLoss
		rows[i].TorchRatio, rows[i].LossRelDiff = &ratio, &diff
		rows = append(rows, runRow{RunBenchResult: tr})
	}
	bar.done()
	if a.jsonOut {
		for _, n := range notes {
			fmt.Fprintf(e.stderr, "rise bench: %s\n", n)
		}
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	}
	printRunTable(e.stdout, rows, l, a.data, ref, notes)
	return nil
}

// runPrecisions reads --precision: f32, bf16, a comma-separated list of
// them, or all (f32, and bf16 where the CPU has AVX512_BF16; skipped then
// says why bf16 is not among them).
func runPrecisions(arg string) (list []string, skipped string, err error) {
	if arg == "all" {
		if !bf16.Native() {
			return []string{"f32"}, "no bf16 run: this CPU has no AVX512_BF16", nil
		}
		return []string{"f32", "bf16"}, "", nil
	}
	for _, p := range strings.Split(arg, ",") {
		if p != "f32" && p != "bf16" {
			return nil, "", usagef("--precision: expected f32, bf16, a list of them or all, found %q", p)
		}
		if slices.Contains(list, p) {
			return nil, "", usagef("--precision: %s is listed twice", p)
		}
		list = append(list, p)
	}
	return list, "", nil
}

// runTorchRun runs the reference on the files in refDir at a precision,
// f32 or bf16 (passed as --precision bf16; f32 passes nothing, so that a
// script of one's own need not know the flag).
func runTorchRun(ctx context.Context, ref *torchRef, refDir string, threads int, precision string) (sae.RunBenchResult, error) {
	var stdout, stderr bytes.Buffer
	args := []string{ref.script, "--ref", refDir, "--threads", strconv.Itoa(threads)}
	if precision != "f32" {
		args = append(args, "--precision", precision)
	}
	cmd := exec.CommandContext(ctx, ref.python, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return sae.RunBenchResult{}, fmt.Errorf("%s %s: %v: %s", ref.python, ref.script, err, lastLine(stderr.String()))
	}
	line := lastLine(stdout.String())
	var r sae.RunBenchResult
	if err := json.Unmarshal([]byte(line), &r); err != nil {
		return r, fmt.Errorf("%s printed %q, expected one JSON object: %v", ref.script, line, err)
	}
	if !(r.SamplesPerS > 0) || !(r.Seconds > 0) || math.IsNaN(r.FinalLoss) || math.IsInf(r.FinalLoss, 0) || r.FinalLoss == 0 {
		return r, fmt.Errorf("%s printed %q, expected positive samples_per_s and seconds and a finite, non-zero final_loss", ref.script, line)
	}
	if r.Precision == "" {
		r.Precision = "f32"
	}
	if r.Precision != precision {
		return r, fmt.Errorf("%s ran in %s, asked for %s", ref.script, r.Precision, precision)
	}
	return r, nil
}

// printRunTable prints the whole runs side by side.
func printRunTable(w io.Writer, rows []runRow, l *activations.Layer, data string, ref *torchRef, notes []string) {
	r0 := rows[0]
	fmt.Fprintf(w, "RISE recipe (ReLU, L1, Adam lr 1e-4, warm-up and cosine) on %s layer %s (%d rows); BLAS %s, %d threads", data, l.Name, l.Rows, matmul.BLASName, r0.Threads)
	if ref != nil {
		fmt.Fprintf(w, "; PyTorch reference %s run by %s", ref.script, ref.python)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "engine\td_in\td_sae\tbatch\tsteps\tseconds\tCPU s\tsamples/s\tfinal loss\tfinal L0\tactive steps\tvs torch\t\n")
	for _, r := range rows {
		ratio, active := "-", "-"
		if r.Engine == "torch" {
			ratio = "1.00x"
		} else {
			active = strconv.Itoa(r.ActiveSteps)
			if r.TorchRatio != nil {
				ratio = fmt.Sprintf("%.2fx", *r.TorchRatio)
			}
		}
		engine := r.Engine
		if r.Precision != "" && r.Precision != "f32" {
			engine += " " + r.Precision
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%.2f\t%.2f\t%.1f\t%.5g\t%.1f\t%s\t%s\t\n", engine, r.DIn, r.DSae, r.Batch, r.Steps, r.Seconds, r.CPUSeconds, r.SamplesPerS, r.FinalLoss, r.FinalL0, active, ratio)
	}
	tw.Flush()
	torch := map[string]runRow{}
	for _, r := range rows {
		if r.Engine == "torch" {
			torch[r.Precision] = r
		}
	}
	for _, r := range rows {
		if r.Engine == "torch" {
			continue
		}
		name := "rise " + r.Precision
		if t, ok := torch[r.Precision]; ok && r.LossRelDiff != nil {
			fmt.Fprintf(w, "final loss: %s %.6g, torch %s %.6g (%+.2f%%)\n", name, r.FinalLoss, r.Precision, t.FinalLoss, 100**r.LossRelDiff)
			if r.CPUSeconds > 0 && t.CPUSeconds > 0 {
				fmt.Fprintf(w, "CPU time: torch %s over %s %.2fx (less sensitive than wall time to other work on the machine)\n", r.Precision, name, t.CPUSeconds/r.CPUSeconds)
			}
		}
		if r.ActiveSteps > 0 || r.DenseStepS > 0 {
			fmt.Fprintf(w, "%s per step: dense %s, over active entries %s\n", name, stepTime(r.DenseStepS), stepTime(r.ActiveStepS))
		}
	}
	for _, n := range notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
}

// stepTime formats a mean step time, "-" when no such step ran.
func stepTime(s float64) string {
	if s == 0 {
		return "-"
	}
	return fmt.Sprintf("%.3f s", s)
}

// benchRunCommand checks rise bench's flags for --run and runs it: the flags
// of the per-step benchmark (other than --steps, --d-sae, --threads,
// --torch and --json) do not apply.
func benchRunCommand(ctx context.Context, e *env, fs *flag.FlagSet, a runBenchArgs) error {
	var bad []string
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "run", "layer", "steps", "d-sae", "threads", "torch", "json", "precision":
		default:
			bad = append(bad, "--"+f.Name)
		}
	})
	if len(bad) > 0 {
		return usagef("%s do not apply to --run (it takes --layer, --steps, --d-sae, --threads, --torch, --precision and --json)", strings.Join(bad, ", "))
	}
	if a.steps < 0 || a.width < 0 || a.threads < 0 {
		return usagef("--steps, --d-sae and --threads must not be negative, got %d, %d and %d", a.steps, a.width, a.threads)
	}
	if a.steps == 0 {
		a.steps = defaultRunSteps
	}
	if a.threads == 0 {
		a.threads = runtime.GOMAXPROCS(0)
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(a.threads))
	return runTrainBench(ctx, e, a)
}
