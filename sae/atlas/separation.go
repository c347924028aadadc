package atlas

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"

	"gonum.org/v1/gonum/blas"

	"github.com/rise-interp/rise/activations"
	"github.com/rise-interp/rise/internal/matmul"
	"github.com/rise-interp/rise/internal/vec"
	"github.com/rise-interp/rise/sae"
)

// LengthField is the steps.jsonl field that says whether a step belongs to a
// short or a long response ("short" or "long"), as rise synth writes it.
const LengthField = "length"

// DefaultSeparationSteps is the number of steps SeparationOptions.MaxSteps
// samples when it is zero.
const DefaultSeparationSteps = 4000

// SeparationOptions configure Separate. The zero value is usable.
type SeparationOptions struct {
	Attribution AttributionOptions
	// MaxSteps is how many labelled steps, drawn at random, the step
	// silhouettes are computed over; 0 means DefaultSeparationSteps.
	MaxSteps int
	// LengthField names the steps' field holding "short" or "long"; ""
	// means LengthField.
	LengthField string
	// Seed fixes the sampled steps and the shuffled baselines.
	Seed uint64
}

// Separation says how well behaviour labels, and short against long
// responses, separate in one SAE's decoder space (RISE, arXiv 2512.23988,
// Fig. 3 and Appendix E). All figures are cosine silhouettes.
//
// Columns holds silhouettes over decoder columns: "behaviours" labels each
// behaviour-specific column by its behaviour, "length" each column specific
// to short or to long responses by that; the "_shuffled" keys are the same
// columns with their labels shuffled, a baseline near 0. Steps holds
// silhouettes over steps, each placed in decoder space by its code
// (Σ_j f_j · W_dec[j], the reconstruction without b_dec), labelled by its
// behaviour or by its response length. A figure that cannot be computed
// (fewer than two labels, no specific columns) is left out and Missing says
// why.
type Separation struct {
	Layer   int                `json:"layer"`
	SAE     string             `json:"sae,omitempty"`
	Columns map[string]float64 `json:"columns"`
	Steps   map[string]float64 `json:"steps"`
	// SpecificColumns counts the columns behind Columns, by label.
	SpecificColumns map[string]int `json:"specific_columns"`
	// SampledSteps is the number of steps behind Steps["behaviours"].
	SampledSteps int               `json:"sampled_steps"`
	Missing      map[string]string `json:"missing,omitempty"`
	// SelectionSteps and HeldOutSteps say, when the attribution held out
	// a share of the traces, how many steps chose the specific columns and
	// how many were set aside; the silhouettes are of the chosen columns.
	SelectionSteps int `json:"selection_steps,omitempty"`
	HeldOutSteps   int `json:"held_out_steps,omitempty"`
}

// Separate measures the separation of behaviours and of response lengths in
// the decoder space of s, from the layer's rows and their steps.
func Separate(ctx context.Context, s *sae.SAE, layer *activations.Layer, steps []activations.Step, opts SeparationOptions) (*Separation, error) {
	if opts.MaxSteps < 0 {
		return nil, fmt.Errorf("separation: steps to sample must be positive (or 0 for the default), got %d", opts.MaxSteps)
	}
	opts.MaxSteps = cmp.Or(opts.MaxSteps, DefaultSeparationSteps)
	opts.LengthField = cmp.Or(opts.LengthField, LengthField)
	sep := &Separation{Layer: layer.Number, Columns: map[string]float64{}, Steps: map[string]float64{},
		SpecificColumns: map[string]int{}, Missing: map[string]string{}}
	w := vec.UnitRows(s.WDec, s.DSae, s.DIn)

	byLength, err := lengthSteps(steps, opts.LengthField)
	if err != nil {
		return nil, err
	}
	views := []struct {
		name  string
		steps []activations.Step
	}{{"behaviours", steps}, {"length", byLength}}
	for i, v := range views {
		attr, err := Attribute(ctx, s, layer, v.steps, opts.Attribution)
		if err != nil {
			if ctx.Err() != nil {
				return nil, err
			}
			sep.Missing["columns_"+v.name] = err.Error()
			continue
		}
		if i == 0 && attr.HeldOut != nil {
			sep.SelectionSteps, sep.HeldOutSteps = attr.Rows, attr.HeldOut.Rows
		}
		cs, err := columnSilhouettes(attr, w, s.DIn, opts.Attribution.Specific, opts.Seed+uint64(i))
		for name, n := range cs.counts {
			sep.SpecificColumns[name] = n
		}
		if err != nil {
			sep.Missing["columns_"+v.name] = err.Error()
			continue
		}
		sep.Columns[v.name], sep.Columns[v.name+"_shuffled"] = cs.real, cs.shuffled
	}

	// Steps: one sample of labelled rows, placed in decoder space once,
	// scored under both labellings.
	rows := sampleRows(steps, byLength, opts.MaxSteps, opts.Seed)
	sep.SampledSteps = len(rows)
	if len(rows) == 0 {
		sep.Missing["steps"] = "no step carries a behaviour label or a length"
		return sep, nil
	}
	codes, err := decoderCodes(ctx, s, layer, rows)
	if err != nil {
		return nil, err
	}
	for i, v := range views {
		var sub []float32
		var labels []int
		ids := map[string]int{}
		for r, row := range rows {
			if len(v.steps[row].Labels) == 0 {
				continue
			}
			name := v.steps[row].Labels[0]
			id, ok := ids[name]
			if !ok {
				id = len(ids)
				ids[name] = id
			}
			labels = append(labels, id)
			sub = append(sub, codes[r*s.DIn:(r+1)*s.DIn]...)
		}
		real, shuffled, err := labelSilhouettes(sub, len(labels), s.DIn, labels, opts.Seed+uint64(i))
		if err != nil {
			sep.Missing["steps_"+v.name] = err.Error()
			continue
		}
		sep.Steps[v.name], sep.Steps[v.name+"_shuffled"] = real, shuffled
	}
	if len(sep.Missing) == 0 {
		sep.Missing = nil
	}
	return sep, nil
}

// lengthSteps returns a copy of steps labelled by their length field alone
// ("short", "long"); steps without the field are unlabelled. A field that is
// not a JSON string is an error naming the step.
func lengthSteps(steps []activations.Step, field string) ([]activations.Step, error) {
	out := make([]activations.Step, len(steps))
	for i, st := range steps {
		out[i] = activations.Step{Trace: st.Trace, Step: st.Step}
		raw, ok := st.Extra[field]
		if !ok {
			continue
		}
		var l string
		if err := json.Unmarshal(raw, &l); err != nil {
			return nil, fmt.Errorf("separation: step %d (trace %q, step %d): field %q: expected a string such as \"short\" or \"long\", found %s", i, st.Trace, st.Step, field, raw)
		}
		if l != "" {
			out[i].Labels = []string{l}
		}
	}
	return out, nil
}

// sampleRows draws up to max rows, in increasing order, among the steps
// labelled in either view.
func sampleRows(a, b []activations.Step, max int, seed uint64) []int {
	var rows []int
	for i := range a {
		if len(a[i].Labels) > 0 || len(b[i].Labels) > 0 {
			rows = append(rows, i)
		}
	}
	if len(rows) > max {
		rng := rand.New(rand.NewPCG(seed, 0x51e9))
		rng.Shuffle(len(rows), func(i, j int) { rows[i], rows[j] = rows[j], rows[i] })
		rows = rows[:max]
		sort.Ints(rows)
	}
	return rows
}

// decoderCodes returns, for each of the given rows of the layer, its place
// in decoder space: the SAE code times the decoder, without b_dec.
func decoderCodes(ctx context.Context, s *sae.SAE, layer *activations.Layer, rows []int) ([]float32, error) {
	const batch = 256
	d, m := s.DIn, s.DSae
	x := make([]float32, batch*d)
	f := make([]float32, batch*m)
	out := make([]float32, len(rows)*d)
	for lo := 0; lo < len(rows); lo += batch {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("separation: %w", err)
		}
		hi := min(lo+batch, len(rows))
		n := hi - lo
		for i, row := range rows[lo:hi] {
			if err := layer.ReadRows(row, x[i*d:(i+1)*d]); err != nil {
				return nil, fmt.Errorf("separation: %w", err)
			}
		}
		s.Encode(x[:n*d], f[:n*m])
		// out = f · W_dec: the decoder without its bias.
		matmul.Impl().Sgemm(blas.NoTrans, blas.NoTrans, n, d, m, 1, f[:n*m], m, s.WDec, d, 0, out[lo*d:hi*d], d)
	}
	return out, nil
}

// silhouetteCounts is what columnSilhouettes found.
type silhouetteCounts struct {
	real, shuffled float64
	counts         map[string]int // specific columns by label
}

// columnSilhouettes labels each behaviour-specific column of attr by its
// behaviour and returns the silhouette of that labelling over the unit
// decoder rows w, and of the same labels shuffled. The behaviours named in
// skip (and their columns) are left out.
func columnSilhouettes(attr *Attribution, w []float32, d int, opts SpecificOptions, seed uint64, skip ...string) (silhouetteCounts, error) {
	sc := silhouetteCounts{counts: map[string]int{}}
	var sub []float32
	var labels []int
	for b, name := range attr.Behaviours {
		if slices.Contains(skip, name) {
			continue
		}
		ids, err := attr.SpecificColumns(name, opts)
		if err != nil {
			return sc, err
		}
		sc.counts[name] = len(ids)
		for _, id := range ids {
			sub = append(sub, w[id*d:(id+1)*d]...)
			labels = append(labels, b)
		}
	}
	var err error
	sc.real, sc.shuffled, err = labelSilhouettes(sub, len(labels), d, labels, seed)
	return sc, err
}

// shuffleRows is how many rows the shuffled baseline of a silhouette
// evaluates at least, in up to maxShuffles shuffles of the labels. One
// shuffle of a few columns is a noisy baseline (on the demo's 15 behaviour
// columns of block 3, one draw gave 0.088 and another block's 15 gave
// -0.266), and the noise falls fast with the rows (random rows of width
// 128: one shuffle's standard deviation 0.019 at 15 rows, 0.0014 at 150,
// 0.0001 at 1,500); a sample of 4,000 steps needs one shuffle, where 100
// took 2.0 s at width 1,536 (one: 0.08 s).
const shuffleRows, maxShuffles = 2000, 100

// shuffles is the number of shuffles the baseline of n rows averages.
func shuffles(n int) int { return min(maxShuffles, max(1, (shuffleRows+n-1)/n)) }

// labelSilhouettes returns the silhouette of labels over the n rows of x and
// the mean silhouette of the labels shuffled, over shuffles(n) shuffles
// drawn with seed.
func labelSilhouettes(x []float32, n, d int, labels []int, seed uint64) (real, shuffled float64, err error) {
	k := distinct(labels)
	if k < 2 || n <= k {
		return 0, 0, fmt.Errorf("expected at least two labels and more rows than labels, found %d rows with %d labels", n, k)
	}
	real, _, err = Silhouette(x, n, d, labels)
	if err != nil {
		return 0, 0, err
	}
	shuf := append([]int(nil), labels...)
	rng := rand.New(rand.NewPCG(seed, 0x5b))
	rounds := shuffles(n)
	for range rounds {
		rng.Shuffle(len(shuf), func(i, j int) { shuf[i], shuf[j] = shuf[j], shuf[i] })
		s, _, err := Silhouette(x, n, d, shuf)
		if err != nil {
			return 0, 0, err
		}
		shuffled += s / float64(rounds)
	}
	return real, shuffled, nil
}

// BestLayers names, for each figure of a sweep ("columns: behaviours",
// "steps: length", ...), the layer where it is highest; a figure no layer
// has is left out.
func BestLayers(seps []*Separation) map[string]int {
	best := map[string]int{}
	for _, view := range []struct {
		name string
		get  func(*Separation) map[string]float64
	}{{"columns", func(s *Separation) map[string]float64 { return s.Columns }}, {"steps", func(s *Separation) map[string]float64 { return s.Steps }}} {
		for _, k := range []string{"behaviours", "length"} {
			top, found := 0.0, false
			for _, sp := range seps {
				if v, ok := view.get(sp)[k]; ok && (!found || v > top) {
					top, found = v, true
					best[view.name+": "+k] = sp.Layer
				}
			}
		}
	}
	return best
}

// errNoSeparation is returned by SweepCurves when no layer has a figure.
var errNoSeparation = errors.New("no layer has a silhouette to draw")

// SweepCurves gathers, from separations sorted by layer, the silhouette
// curves to draw against the layer number: "columns: behaviours",
// "steps: length" and so on, each only when every layer has it.
func SweepCurves(seps []*Separation) (layers []float64, curves map[string][]float64, err error) {
	curves = map[string][]float64{}
	if len(seps) == 0 {
		return nil, nil, errNoSeparation
	}
	for _, sp := range seps {
		layers = append(layers, float64(sp.Layer))
	}
	for _, view := range []struct {
		prefix string
		get    func(*Separation) map[string]float64
	}{{"columns", func(s *Separation) map[string]float64 { return s.Columns }}, {"steps", func(s *Separation) map[string]float64 { return s.Steps }}} {
		for _, key := range []string{"behaviours", "length", "behaviours_shuffled", "length_shuffled"} {
			ys := make([]float64, 0, len(seps))
			for _, sp := range seps {
				v, ok := view.get(sp)[key]
				if !ok {
					break
				}
				ys = append(ys, v)
			}
			if len(ys) == len(seps) {
				curves[view.prefix+": "+key] = ys
			}
		}
	}
	if len(curves) == 0 {
		return nil, nil, errNoSeparation
	}
	return layers, curves, nil
}
