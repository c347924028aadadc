package activations

import (
	"context"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/rise-interp/rise/internal/memory"
)

// Summary is what "rise inspect" reports about a dump.
type Summary struct {
	Path      string         `json:"path"`
	Kind      Kind           `json:"kind"`
	Model     string         `json:"model,omitempty"`
	Position  string         `json:"position,omitempty"`
	Delimiter string         `json:"delimiter,omitempty"`
	Rows      int            `json:"rows"`
	DModel    int            `json:"d_model"`
	Layers    []LayerSummary `json:"layers"`

	StepsFile  string         `json:"steps_file,omitempty"`
	TracesFile string         `json:"traces_file,omitempty"`
	Traces     int            `json:"traces"`      // distinct trace ids in steps.jsonl
	Labels     map[string]int `json:"labels"`      // steps per behaviour label
	Unlabelled int            `json:"unlabelled"`  // steps without labels
	FirstSteps []Step         `json:"first_steps"` // the first few steps
}

// LayerSummary describes one layer of a dump.
type LayerSummary struct {
	Number int      `json:"layer"`
	Name   string   `json:"name"`
	Rows   int      `json:"rows"`
	DTypes []string `json:"dtypes"`
	Shards int      `json:"shards"`
	Bytes  int64    `json:"bytes"`

	// Filled when statistics were asked for.
	MeanNorm     float64 `json:"mean_norm,omitempty"`
	NormStd      float64 `json:"norm_std,omitempty"`
	MinNorm      float64 `json:"min_norm,omitempty"`
	MaxNorm      float64 `json:"max_norm,omitempty"`
	MeanVecNorm  float64 `json:"mean_vector_norm,omitempty"` // ||E x||: how far the rows sit from the origin
	TotalVar     float64 `json:"total_variance,omitempty"`   // E||x - E x||^2
	MaxDimStdDev float64 `json:"max_dim_std,omitempty"`
}

// InspectOptions choose how much work Inspect does.
type InspectOptions struct {
	Stats      bool // read every row: norm statistics, and a check of every value
	FirstSteps int  // how many steps to keep in Summary.FirstSteps
	// Progress, when set, is called as rows are read.
	Progress func(done, total int64)
}

// Inspect opens a dump, checks it and summarises it. Every line of
// steps.jsonl is parsed; with opt.Stats every row of every layer is read too.
func Inspect(ctx context.Context, path string, opt InspectOptions) (*Summary, error) {
	d, err := OpenContext(ctx, path)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	s := &Summary{Path: path, Kind: d.Kind, Rows: d.Rows, DModel: d.DModel, Labels: map[string]int{},
		StepsFile: d.StepsPath, TracesFile: d.TracesPath}
	if m := d.Manifest; m != nil {
		s.Model, s.Position, s.Delimiter = m.Model, m.Position, m.Delimiter
	}
	if d.StepsPath != "" {
		if err := s.readSteps(ctx, d.StepsPath, opt.FirstSteps); err != nil {
			return nil, err
		}
	}
	total := int64(d.Rows) * int64(len(d.Layers))
	for i, l := range d.Layers {
		ls := LayerSummary{Number: l.Number, Name: l.Name, Rows: l.Rows, Shards: len(l.shards), Bytes: l.Bytes()}
		for _, dt := range l.DTypes() {
			ls.DTypes = append(ls.DTypes, dt.String())
		}
		if opt.Stats {
			var prog func(done, _ int64)
			if opt.Progress != nil {
				base := int64(i) * int64(d.Rows)
				prog = func(done, _ int64) { opt.Progress(base+done, total) }
			}
			st, err := l.Stats(ctx, prog)
			if err != nil {
				return nil, err
			}
			ls.MeanNorm, ls.NormStd, ls.MinNorm, ls.MaxNorm, ls.TotalVar = st.MeanNorm, st.NormStd, st.MinNorm, st.MaxNorm, st.TotalVar
			var mv, maxVar float64
			for j, m := range st.Mean {
				mv += m * m
				maxVar = math.Max(maxVar, st.Var[j])
			}
			ls.MeanVecNorm, ls.MaxDimStdDev = math.Sqrt(mv), math.Sqrt(maxVar)
			if st.Rows == 0 {
				ls.MinNorm, ls.MaxNorm = 0, 0
			}
		}
		s.Layers = append(s.Layers, ls)
	}
	return s, nil
}

func (s *Summary) readSteps(ctx context.Context, path string, keep int) error {
	r, err := OpenLines(path)
	if err != nil {
		return err
	}
	defer r.Close()
	traces := map[string]bool{}
	for n := 0; ; n++ {
		if n%4096 == 0 && ctx.Err() != nil {
			return fmt.Errorf("%s: reading steps: %w", path, ctx.Err())
		}
		var st Step
		err := r.Next(&st)
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		traces[st.Trace] = true
		if len(st.Labels) == 0 {
			s.Unlabelled++
		}
		for _, l := range st.Labels {
			s.Labels[l]++
		}
		if len(s.FirstSteps) < keep {
			s.FirstSteps = append(s.FirstSteps, st)
		}
	}
	s.Traces = len(traces)
	return nil
}

// WriteText prints the summary for a person.
func (s *Summary) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	p := func(k, v string) { fmt.Fprintf(tw, "%s\t%s\n", k, v) }
	p("path", s.Path)
	p("format", string(s.Kind))
	if s.Model != "" {
		p("model", s.Model)
	}
	if s.Position != "" {
		pos := s.Position
		if s.Delimiter != "" {
			pos += fmt.Sprintf(" (delimiter %q)", s.Delimiter)
		}
		p("position", pos)
	}
	p("rows", fmt.Sprint(s.Rows))
	p("d_model", fmt.Sprint(s.DModel))
	var nums []string
	for _, l := range s.Layers {
		nums = append(nums, fmt.Sprint(l.Number))
	}
	p("layers", strings.Join(nums, ", "))
	if s.StepsFile == "" {
		p("steps", "none (no steps.jsonl)")
	} else {
		p("steps", fmt.Sprintf("%d in %d traces", s.Rows, s.Traces))
		names := make([]string, 0, len(s.Labels))
		for k := range s.Labels {
			names = append(names, k)
		}
		sort.Slice(names, func(i, j int) bool {
			if s.Labels[names[i]] != s.Labels[names[j]] {
				return s.Labels[names[i]] > s.Labels[names[j]]
			}
			return names[i] < names[j]
		})
		for _, k := range names {
			p("  "+k, fmt.Sprintf("%d (%.1f%%)", s.Labels[k], pct(s.Labels[k], s.Rows)))
		}
		if s.Unlabelled > 0 {
			p("  (unlabelled)", fmt.Sprintf("%d (%.1f%%)", s.Unlabelled, pct(s.Unlabelled, s.Rows)))
		}
	}
	if s.TracesFile != "" {
		p("traces file", s.TracesFile)
	}
	tw.Flush()

	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "layer\trows\tdtype\tshards\tsize\tmean ‖x‖\tstd ‖x‖\tmin ‖x‖\tmax ‖x‖\t‖mean‖\ttotal var\t")
	for _, l := range s.Layers {
		stats := "\t\t\t\t\t"
		if l.MeanNorm != 0 || l.TotalVar != 0 {
			stats = fmt.Sprintf("%.4g\t%.4g\t%.4g\t%.4g\t%.4g\t%.4g", l.MeanNorm, l.NormStd, l.MinNorm, l.MaxNorm, l.MeanVecNorm, l.TotalVar)
		}
		fmt.Fprintf(tw, "%d\t%d\t%s\t%d\t%s\t%s\t\n", l.Number, l.Rows, strings.Join(l.DTypes, "+"), l.Shards, memory.Bytes(uint64(max(l.Bytes, 0))), stats)
	}
	tw.Flush()
	if len(s.FirstSteps) > 0 {
		fmt.Fprintf(w, "\nfirst %d steps:\n", len(s.FirstSteps))
		for i, st := range s.FirstSteps {
			labels := strings.Join(st.Labels, ",")
			if labels == "" {
				labels = "-"
			}
			fmt.Fprintf(w, "  %4d  %s#%d  [%s]  %s\n", i, st.Trace, st.Step, labels, oneLine(st.Text, 90))
		}
	}
	return nil
}

func pct(n, of int) float64 {
	if of == 0 {
		return 0
	}
	return 100 * float64(n) / float64(of)
}

func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}
