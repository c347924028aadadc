package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"slices"
	"time"

	"github.com/rise-interp/rise/steer/model"
)

// modelBench is what rise bench --model measures: the native runtime's
// greedy decoding (batch sequences, one token each a step) and its
// reading of a prompt, on one model.
type modelBench struct {
	decode, promptLen, batch, reps, threads int
}

// modelBenchResult is one measurement, as --json prints it.
type modelBenchResult struct {
	Model       string  `json:"model"`
	Precision   string  `json:"precision"`
	WeightBytes int64   `json:"weight_bytes"`
	Kind        string  `json:"kind"` // "decode" or "prefill"
	Batch       int     `json:"batch"`
	Tokens      int     `json:"tokens"` // per repetition, over all sequences
	Threads     int     `json:"threads"`
	Reps        int     `json:"reps"`
	Median      float64 `json:"tokens_per_s"` // median over the repetitions
	Min         float64 `json:"min_tokens_per_s"`
	Max         float64 `json:"max_tokens_per_s"`
}

// precisionName says how the model holds its weight matrices.
func precisionName(m *model.Model) string {
	counts := m.DTypes()
	var names []string
	for d, n := range counts {
		names = append(names, fmt.Sprintf("%v×%d", d, n))
	}
	slices.Sort(names)
	if len(counts) == 1 {
		for d := range counts {
			return d.String()
		}
	}
	return fmt.Sprint(names)
}

// run measures decoding and prompt reading on m, repetition by
// repetition, each on fresh sequences.
func (b modelBench) run(ctx context.Context, m *model.Model, name string) ([]modelBenchResult, error) {
	base := modelBenchResult{Model: name, Precision: precisionName(m), WeightBytes: m.WeightBytes(), Threads: b.threads, Reps: b.reps}
	var out []modelBenchResult
	// Decoding: one token of prompt per sequence, then b.decode greedy
	// steps of every sequence, timed.
	if b.decode > 0 {
		var rates []float64
		for range b.reps {
			seqs := make([]*model.Sequence, b.batch)
			toks := make([][]int, b.batch)
			for i := range seqs {
				seqs[i] = m.NewSequence()
				toks[i] = []int{i % m.Vocab}
			}
			if _, err := m.Forward(ctx, seqs, toks, false, nil); err != nil {
				return nil, err
			}
			start := time.Now()
			for range b.decode {
				logits, err := m.Forward(ctx, seqs, toks, false, nil)
				if err != nil {
					return nil, err
				}
				for i := range toks {
					toks[i][0] = model.Argmax(logits[i*m.Vocab : (i+1)*m.Vocab])
				}
			}
			rates = append(rates, float64(b.decode*b.batch)/time.Since(start).Seconds())
		}
		r := base
		r.Kind, r.Batch, r.Tokens = "decode", b.batch, b.decode*b.batch
		r.Median, r.Min, r.Max = summarise(rates)
		out = append(out, r)
	}
	// Reading a prompt of b.promptLen tokens in one forward pass.
	if b.promptLen > 0 {
		ids := make([]int, b.promptLen)
		for i := range ids {
			ids[i] = (i*7919 + 13) % m.Vocab
		}
		var rates []float64
		for range b.reps {
			s := m.NewSequence()
			start := time.Now()
			if _, err := m.Forward(ctx, []*model.Sequence{s}, [][]int{ids}, false, nil); err != nil {
				return nil, err
			}
			rates = append(rates, float64(b.promptLen)/time.Since(start).Seconds())
		}
		r := base
		r.Kind, r.Batch, r.Tokens = "prefill", 1, b.promptLen
		r.Median, r.Min, r.Max = summarise(rates)
		out = append(out, r)
	}
	return out, nil
}

// summarise returns the median, smallest and largest of rates.
func summarise(rates []float64) (median, lo, hi float64) {
	s := slices.Clone(rates)
	slices.Sort(s)
	return s[len(s)/2], s[0], s[len(s)-1]
}

// printModelBench writes the results as a table, or as JSON lines.
func printModelBench(w io.Writer, rs []modelBenchResult, jsonOut bool) error {
	if jsonOut {
		enc := json.NewEncoder(w)
		for _, r := range rs {
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
		return nil
	}
	for _, r := range rs {
		fmt.Fprintf(w, "rise\t%s\t%s\tbatch %d\t%.2f tok/s (median of %d; min %.2f, max %.2f)\t%d threads\t%.0f MB of weights\t%s\n",
			r.Kind, r.Precision, r.Batch, r.Median, r.Reps, r.Min, r.Max, r.Threads, float64(r.WeightBytes)/1e6, r.Model)
	}
	return nil
}

// runModelBench loads the model of mf and measures it.
func runModelBench(ctx context.Context, w io.Writer, mf *modelFlags, b modelBench, jsonOut bool) error {
	for _, f := range []struct {
		name string
		v    int
	}{{"--decode", b.decode}, {"--prompt-len", b.promptLen}, {"--threads", b.threads}} {
		if f.v < 0 {
			return usagef("%s: expected a count of at least 0, found %d", f.name, f.v)
		}
	}
	if b.batch < 1 || b.reps < 1 {
		return usagef("--batch and --reps: expected at least 1, found %d and %d", b.batch, b.reps)
	}
	o, err := mf.options()
	if err != nil {
		return err
	}
	if b.threads == 0 {
		b.threads = runtime.GOMAXPROCS(0)
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(b.threads))
	m, err := model.LoadModelWith(mf.model, o)
	if err != nil {
		return err
	}
	if need := 1 + max(b.decode, b.promptLen); need > m.MaxSeq {
		return usagef("--decode and --prompt-len: the model holds %d positions, %d asked for", m.MaxSeq, need)
	}
	rs, err := b.run(ctx, m, mf.model)
	if err != nil {
		return err
	}
	return printModelBench(w, rs, jsonOut)
}
