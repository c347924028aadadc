package steer

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/rise-interp/rise/steer/model"

	"github.com/rise-interp/rise/activations"
	"github.com/rise-interp/rise/internal/files"
	"github.com/rise-interp/rise/internal/inputerr"
	"github.com/rise-interp/rise/internal/vec"
	"github.com/rise-interp/rise/sae"
	"github.com/rise-interp/rise/sae/atlas"
)

// maxJSONFile bounds a steering spec or a confidence result read whole: a
// spec is a few lines, a confidence result one vector of d_model numbers.
const maxJSONFile = 64 << 20

// Operators change the residual stream h along a unit direction v with a
// strength a (DESIGN.md, steering conventions).
const (
	OpAdd    = "add"    // h' = h + a·v
	OpScale  = "scale"  // h' = h + a·v·(v·h): a > 0 amplifies what is there, a = −1 removes it
	OpClamp  = "clamp"  // h' = h + (a − v·h)·v: the component along v becomes a
	OpAblate = "ablate" // h' = h − (v·h)·v
)

// Position policies say which rows a vector changes.
const (
	PosAll          = "all"
	PosPrompt       = "prompt"
	PosGenerated    = "generated"
	PosStepBoundary = "step_boundary" // the delimiter tokens ("\n\n"), RISE's choice
	// PosWindow steers generated tokens From <= i < To (Window; i counts
	// the generated tokens from 0).
	PosWindow = "window"
	// PosTrigger steers every token that follows one of the Triggers token
	// ids, prompt or generated (EasySteer's trigger tokens).
	PosTrigger = "trigger"
)

// TokenWindow is a range of generated tokens: From <= i < To, with To 0
// for no end.
type TokenWindow struct {
	From int `json:"from"`
	To   int `json:"to"`
}

// VectorSpec is one entry of a steering spec file.
type VectorSpec struct {
	// Source is "npy:PATH" (a .npy of d_model values: [d], [1, d] or a
	// column [d, 1]; see ReadVectorsNpy), "npy:PATH#ROW" (row ROW of a
	// [n, d] .npy), "sae:SAE_DIR#FEATURE" (the feature's decoder row) or
	// "atlas:ATLAS.json#BEHAVIOUR" (the behaviour vector of an atlas) or
	// "confidence:CONF.json" (a vector of rise confidence).
	// Relative paths are taken from the spec file's directory.
	Source    string  `json:"source"`
	Layer     int     `json:"layer"` // the output of block Layer, counting from 0
	Op        string  `json:"op"`
	Strength  float64 `json:"strength"`
	Positions string  `json:"positions"`
	// Window is the range of generated tokens of positions "window".
	Window *TokenWindow `json:"window,omitempty"`
	// Triggers are the token ids whose following token positions
	// "trigger" steers.
	Triggers []int `json:"triggers,omitempty"`
}

// Spec is a steering spec: several vectors applied at once.
type Spec struct {
	Vectors []VectorSpec `json:"vectors"`
}

// Vector is a resolved steering vector: a unit direction and how to apply it.
type Vector struct {
	VectorSpec
	Dir []float32 // unit length
}

// ReadSpec reads a steering spec file.
func ReadSpec(path string) (*Spec, error) {
	b, err := files.ReadRegular(path, maxJSONFile, "a steering spec")
	if err != nil {
		return nil, inputerr.Wrap(err)
	}
	var s Spec
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return nil, inputerr.Errorf("%s: expected {\"vectors\": [{\"source\", \"layer\", \"op\", \"strength\", \"positions\"}, ...]}: %w", path, err)
	}
	base := filepath.Dir(path)
	for i := range s.Vectors {
		v := &s.Vectors[i]
		if kind, rest, ok := strings.Cut(v.Source, ":"); ok && rest != "" && !filepath.IsAbs(rest) && (kind == "npy" || kind == "sae" || kind == "atlas" || kind == "confidence") {
			v.Source = kind + ":" + filepath.Join(base, rest)
		}
	}
	if len(s.Vectors) == 0 {
		return nil, inputerr.Errorf("%s: the spec has no vectors", path)
	}
	return &s, nil
}

// Resolve loads every vector's direction and checks it against a model of
// width dim and the given number of blocks.
func (s *Spec) Resolve(dim, layers int) ([]Vector, error) {
	out := make([]Vector, 0, len(s.Vectors))
	for i, vs := range s.Vectors {
		where := fmt.Sprintf("vector %d (%s)", i, vs.Source)
		if err := vs.withDefaults().Check(layers); err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		dir, err := readDirection(vs.Source)
		if err != nil {
			return nil, inputerr.Errorf("%s: %w", where, err)
		}
		v, err := NewVector(vs, dir, dim, layers)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		out = append(out, v)
	}
	return out, nil
}

// withDefaults fills in what a spec may leave out: op add, positions all.
func (vs VectorSpec) withDefaults() VectorSpec {
	if vs.Op == "" {
		vs.Op = OpAdd
	}
	if vs.Positions == "" {
		vs.Positions = PosAll
	}
	return vs
}

// NewVector makes the steering vector of a direction for a model whose
// residual stream has dim values and which has the given number of blocks:
// the spec's defaults filled in and the spec checked (Check), the direction
// checked against dim and used at unit length. Every reader of steering
// vectors (spec files, the workbench, the model server) makes them here.
func NewVector(vs VectorSpec, dir []float32, dim, layers int) (Vector, error) {
	vs = vs.withDefaults()
	if err := vs.Check(layers); err != nil {
		return Vector{}, err
	}
	if len(dir) != dim {
		return Vector{}, inputerr.Errorf("expected %d values, the width of the model's residual stream %d, found %d", dim, dim, len(dir))
	}
	unit, err := vec.Unit(dir)
	if err != nil {
		return Vector{}, inputerr.Wrap(err)
	}
	return Vector{VectorSpec: vs, Dir: unit}, nil
}

// Check reports an operator, position policy, layer or strength that a
// model of the given number of blocks cannot take.
func (vs VectorSpec) Check(layers int) error {
	switch vs.Op {
	case OpAdd, OpScale, OpClamp, OpAblate:
	default:
		return inputerr.Errorf("op: expected add, scale, clamp or ablate, found %q", vs.Op)
	}
	switch vs.Positions {
	case PosAll, PosPrompt, PosGenerated, PosStepBoundary:
	case PosWindow:
		if w := vs.Window; w == nil || w.From < 0 || w.To < 0 || w.To != 0 && w.To <= w.From {
			return inputerr.Errorf("window: positions \"window\" needs {\"from\": F, \"to\": T} with 0 <= F < T (T 0: no end), found %+v", vs.Window)
		}
	case PosTrigger:
		if len(vs.Triggers) == 0 {
			return inputerr.Errorf("triggers: positions \"trigger\" needs at least one token id")
		}
		for _, id := range vs.Triggers {
			if id < 0 {
				return inputerr.Errorf("triggers: expected token ids, found %d", id)
			}
		}
	default:
		return inputerr.Errorf("positions: expected all, prompt, generated, step_boundary, window or trigger, found %q", vs.Positions)
	}
	if vs.Window != nil && vs.Positions != PosWindow || len(vs.Triggers) > 0 && vs.Positions != PosTrigger {
		return inputerr.Errorf("positions: a window goes with positions \"window\" and triggers with \"trigger\", found %q", vs.Positions)
	}
	if vs.Layer < 0 || vs.Layer >= layers {
		return inputerr.Errorf("layer: expected a block from 0 to %d, found %d", layers-1, vs.Layer)
	}
	if math.IsNaN(vs.Strength) || math.IsInf(vs.Strength, 0) || math.Abs(vs.Strength) > MaxStrength {
		return inputerr.Errorf("strength: expected a number from -%g to %g, found %v", float64(MaxStrength), float64(MaxStrength), vs.Strength)
	}
	return nil
}

// MaxStrength bounds a steering strength. Directions are unit vectors and
// the residual streams of the models rise runs are of order 1 to 10⁴, so a
// strength beyond 10⁶ only drives the stream out of float32's range (it
// becomes NaN or ±Inf and generation has nothing left to decode).
const MaxStrength = 1e6

// ReadVectorsNpy reads steering vectors from a .npy stream of size bytes
// (float16, float32 or float64, either byte order, C or Fortran order), as
// a file or an upload holds them; name says where they come from in errors.
// A one-dimensional array [d] is one vector, the natural way to save one; a
// two-dimensional array [n, d] is n vectors, one per row, except a single
// column [d, 1] with d > 1, which is one vector saved as a column (no model
// has a residual stream one value wide). Every value must be finite. The
// vectors share one backing array.
func ReadVectorsNpy(r io.Reader, size int64, name string) ([][]float32, error) {
	x, shape, err := activations.ReadNpyArray(r, size)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	n, d := 1, shape[0]
	if len(shape) == 2 {
		n, d = shape[0], shape[1]
		if d == 1 && n > 1 {
			n, d = 1, shape[0]
		}
	}
	if n < 1 || d < 1 {
		return nil, fmt.Errorf("%s: array of shape %v: expected at least one vector of at least one value", name, shape)
	}
	for i, f := range x {
		if math.IsNaN(float64(f)) || math.IsInf(float64(f), 0) {
			return nil, fmt.Errorf("%s: value %d of vector %d is %v: expected finite values", name, i%d, i/d, f)
		}
	}
	out := make([][]float32, n)
	for i := range out {
		out[i] = x[i*d : (i+1)*d : (i+1)*d]
	}
	return out, nil
}

// ReadVectorsNpyFile is ReadVectorsNpy on a file.
func ReadVectorsNpyFile(path string) ([][]float32, error) {
	f, st, err := files.OpenRegular(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ReadVectorsNpy(f, st.Size(), path)
}

// LoadDirection reads a steering direction from a source ("npy:PATH",
// "npy:PATH#ROW", "sae:SAE_DIR#FEATURE", "atlas:ATLAS.json#BEHAVIOUR",
// "confidence:CONF.json") and returns it at unit length.
func LoadDirection(source string) ([]float32, error) {
	v, err := readDirection(source)
	if err != nil {
		return nil, inputerr.Wrap(err)
	}
	out, err := vec.Unit(v)
	if err != nil {
		return nil, inputerr.Errorf("source %q: %w", source, err)
	}
	return out, nil
}

// readDirection reads the direction a source names, as stored.
func readDirection(source string) ([]float32, error) {
	kind, rest, ok := strings.Cut(source, ":")
	if !ok {
		return nil, inputerr.Errorf("source %q: expected npy:PATH, sae:SAE_DIR#FEATURE or atlas:ATLAS.json#BEHAVIOUR", source)
	}
	var v []float32
	switch kind {
	case "npy":
		path, row := rest, -1
		if i := strings.LastIndexByte(rest, '#'); i >= 0 {
			if n, err := strconv.Atoi(rest[i+1:]); err == nil && n >= 0 {
				path, row = rest[:i], n
			}
		}
		vs, err := ReadVectorsNpyFile(path)
		if err != nil {
			return nil, err
		}
		switch {
		case row < 0 && len(vs) != 1:
			return nil, inputerr.Errorf("%s: expected one vector, found %d rows: pick one with npy:%s#ROW", path, len(vs), path)
		case row >= len(vs):
			return nil, inputerr.Errorf("%s: row %d: expected 0 to %d", path, row, len(vs)-1)
		case row < 0:
			row = 0
		}
		v = vs[row]
	case "sae":
		dir, feat, ok := strings.Cut(rest, "#")
		id, err := strconv.Atoi(feat)
		if !ok || err != nil {
			return nil, inputerr.Errorf("source %q: expected sae:SAE_DIR#FEATURE with a feature number", source)
		}
		s, err := sae.LoadAny(dir)
		if err != nil {
			return nil, err
		}
		if v, err = FeatureDirection(s, id); err != nil {
			return nil, fmt.Errorf("%s: %w", dir, err)
		}
	case "atlas":
		path, name, ok := strings.Cut(rest, "#")
		if !ok || name == "" {
			return nil, inputerr.Errorf("source %q: expected atlas:ATLAS.json#BEHAVIOUR", source)
		}
		a, err := atlas.Load(path)
		if err != nil {
			return nil, err
		}
		if v, err = BehaviourDirection(a, name); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	case "confidence":
		b, err := files.ReadRegular(rest, maxJSONFile, "a confidence vector")
		if err != nil {
			return nil, err
		}
		var c struct {
			Vector []float32 `json:"vector"`
		}
		if err := json.Unmarshal(b, &c); err != nil {
			return nil, fmt.Errorf("%s: %w", rest, err)
		}
		if len(c.Vector) == 0 {
			return nil, inputerr.Errorf("%s: expected a confidence vector (rise confidence's output) with a \"vector\"", rest)
		}
		v = c.Vector
	default:
		return nil, inputerr.Errorf("source %q: expected npy:, sae:, atlas: or confidence:", source)
	}
	return v, nil
}

// FeatureDirection is the decoder row of an SAE's feature id.
func FeatureDirection(s *sae.SAE, id int) ([]float32, error) {
	if id < 0 || id >= s.DSae {
		return nil, inputerr.Errorf("feature %d: expected 0 to %d", id, s.DSae-1)
	}
	return append([]float32(nil), s.WDec[id*s.DIn:(id+1)*s.DIn]...), nil
}

// BehaviourDirection is an atlas's vector for the named behaviour.
func BehaviourDirection(a *atlas.Atlas, name string) ([]float32, error) {
	info, ok := a.Behaviours[name]
	if !ok {
		known := make([]string, 0, len(a.Behaviours))
		for k := range a.Behaviours {
			known = append(known, k)
		}
		sort.Strings(known)
		return nil, inputerr.Errorf("no behaviour %q (the atlas has %v)", name, known)
	}
	if info.Vector == nil {
		return nil, inputerr.Errorf("behaviour %q has no vector: %s", name, info.Error)
	}
	return info.Vector, nil
}

// apply changes one row h by the vector.
func (v *Vector) apply(h []float32) {
	var dot float32
	for i, x := range v.Dir {
		dot += x * h[i]
	}
	a := float32(v.Strength)
	var k float32
	switch v.Op {
	case OpAdd:
		k = a
	case OpScale:
		k = a * dot
	case OpClamp:
		k = a - dot
	case OpAblate:
		k = -dot
	}
	for i, x := range v.Dir {
		h[i] += k * x
	}
}

// boundaries tells which tokens end a step: RISE steers at the step
// delimiter "\n\n", which a tokenizer may hold in one token or spread over
// two ("\n" after a token ending in "\n").
type boundaries struct {
	double, starts, ends []bool
}

func newBoundaries(tok model.Tokenizer) *boundaries {
	n := tok.VocabSize()
	b := &boundaries{double: make([]bool, n), starts: make([]bool, n), ends: make([]bool, n)}
	for id := range n {
		s := tok.Decode([]int{id}, true)
		b.double[id] = strings.Contains(s, "\n\n")
		b.starts[id] = strings.HasPrefix(s, "\n")
		b.ends[id] = strings.HasSuffix(s, "\n")
	}
	return b
}

// at reports whether a row's token completes a step delimiter.
func (b *boundaries) at(r model.Row) bool {
	if r.Token < 0 || r.Token >= len(b.double) {
		return false
	}
	if b.double[r.Token] {
		return true
	}
	return b.starts[r.Token] && r.Prev >= 0 && r.Prev < len(b.ends) && b.ends[r.Prev]
}

// Vectors are steering vectors applied together: as a model.HookFactory
// they steer a generation (model.GenerateOptions.Hooks), and as a
// model.HookExplainer they name themselves in the error of a generation
// whose residual stream they pushed out of float32's range.
type Vectors []Vector

// Explain describes the vectors applied after blocks up to layer, for
// model.NonFiniteError: "steering vector 0 (npy:v.npy: add, strength 1e+30,
// layer 2, positions all)". It is empty when none is.
func (vs Vectors) Explain(layer int) string {
	var parts []string
	for i, v := range vs {
		if v.Layer > layer {
			continue
		}
		src := v.Source
		if src == "" {
			src = "unnamed"
		}
		parts = append(parts, fmt.Sprintf("steering vector %d (%s: %s, strength %g, layer %d, positions %s)", i, src, v.Op, v.Strength, v.Layer, v.Positions))
	}
	return strings.Join(parts, " and ")
}

// Hook returns the hook that applies the vectors to the rows their
// positions select, nil when there are none.
func (vs Vectors) Hook(tok model.Tokenizer, dim int) model.Hook {
	if len(vs) == 0 {
		return nil
	}
	var bd *boundaries
	for _, v := range vs {
		if v.Positions == PosStepBoundary {
			bd = newBoundaries(tok)
			break
		}
	}
	return vs.hook(bd, dim)
}

// hook is Hook with the step delimiters already found (bd may be nil when
// no vector acts at step boundaries).
func (vs Vectors) hook(bd *boundaries, dim int) model.Hook {
	if len(vs) == 0 {
		return nil
	}
	return func(layer int, h []float32, rows []model.Row) {
		for vi := range vs {
			v := &vs[vi]
			if v.Layer != layer {
				continue
			}
			for r, row := range rows {
				ok := false
				switch v.Positions {
				case PosAll:
					ok = true
				case PosPrompt:
					ok = row.InPrompt
				case PosGenerated:
					ok = !row.InPrompt
				case PosStepBoundary:
					ok = bd != nil && bd.at(row)
				case PosWindow:
					i := row.Pos - row.PromptLen
					ok = i >= v.Window.From && (v.Window.To == 0 || i < v.Window.To)
				case PosTrigger:
					ok = slices.Contains(v.Triggers, row.Prev)
				}
				if ok {
					v.apply(h[r*dim : (r+1)*dim])
				}
			}
		}
	}
}
