package report

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/rise-interp/rise/activations"
	"github.com/rise-interp/rise/internal/inputerr"
	"github.com/rise-interp/rise/internal/vec"
	"github.com/rise-interp/rise/sae"
	"github.com/rise-interp/rise/sae/atlas"
	"github.com/rise-interp/rise/steer"
)

// num writes a figure with four significant digits ("-" for none).
func num(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "-"
	}
	return strconv.FormatFloat(v, 'g', 4, 64)
}

// fixed writes a figure with three decimals.
func fixed(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "-"
	}
	return strconv.FormatFloat(v, 'f', 3, 64)
}

func pct(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "-"
	}
	return strconv.FormatFloat(100*v, 'f', 1, 64) + "%"
}

func itoa(n int) string { return strconv.Itoa(n) }

// behaviour writes a run's interval for a behaviour, "-" when the run has
// none for it.
func behaviour(r steer.Run, name string) string {
	iv, ok := r.Behaviours[name]
	if !ok {
		return "-"
	}
	return interval(iv)
}

func interval(iv steer.Interval) string {
	return fmt.Sprintf("%s [%s, %s]", fixed(iv.Mean), fixed(iv.Lo), fixed(iv.Hi))
}

// dataset opens the dump and summarises its layers, steps and traces.
func (b *builder) dataset() error {
	d, err := activations.OpenContext(b.ctx, b.in.Data)
	if err != nil {
		return err
	}
	b.dump = d
	s := section{id: "dataset", title: "Dataset"}
	m := d.Manifest
	var layers []string
	for _, l := range d.Layers {
		layers = append(layers, itoa(l.Number))
	}
	rows := [][]string{
		{"dump", b.in.Data},
		{"layout", string(d.Kind)},
		{"model", orDash(m.Model)},
		{"d_model", itoa(d.DModel)},
		{"layers", strings.Join(layers, ", ")},
		{"rows per layer", itoa(d.Rows)},
		{"position", orDash(m.Position)},
		{"delimiter", strconv.Quote(m.Delimiter)},
	}
	var labelTable *table
	if d.Kind == activations.KindDir {
		b.hash("dump manifest", filepath.Join(d.Path, "manifest.json"))
	}
	if d.StepsPath != "" {
		b.hash("dump steps", d.StepsPath)
		steps, err := activations.ReadSteps(d.StepsPath)
		if err != nil {
			return err
		}
		traces := map[string]bool{}
		labels := map[string]int{}
		unlabelled := 0
		for _, st := range steps {
			traces[st.Trace] = true
			for _, l := range st.Labels {
				labels[l]++
			}
			if len(st.Labels) == 0 {
				unlabelled++
			}
		}
		rows = append(rows, []string{"steps", itoa(len(steps))}, []string{"traces with steps", itoa(len(traces))})
		var lrows [][]string
		for _, name := range slices.Sorted(maps.Keys(labels)) {
			lrows = append(lrows, []string{name, itoa(labels[name]), pct(float64(labels[name]) / float64(max(1, len(steps))))})
		}
		lrows = append(lrows, []string{"(no label)", itoa(unlabelled), pct(float64(unlabelled) / float64(max(1, len(steps))))})
		labelTable = &table{caption: "Steps by behaviour label (a step may carry several)", head: []string{"label", "steps", "share"}, rows: lrows}
	} else {
		rows = append(rows, []string{"steps", "no steps.jsonl: no behaviour labels"})
	}
	if d.TracesPath != "" {
		b.hash("dump traces", d.TracesPath)
		traces, err := activations.ReadTraces(d.TracesPath)
		if err != nil {
			return err
		}
		var tokens, known, right, judged int
		for _, t := range traces {
			if t.Tokens != nil {
				tokens += *t.Tokens
				known++
			}
			if t.Correct != nil {
				judged++
				if *t.Correct {
					right++
				}
			}
		}
		rows = append(rows, []string{"traces", itoa(len(traces))})
		if known > 0 {
			rows = append(rows, []string{"mean response tokens", num(float64(tokens) / float64(known))})
		}
		if judged > 0 {
			rows = append(rows, []string{"traces with a right answer", fmt.Sprintf("%d of %d (%s)", right, judged, pct(float64(right)/float64(judged)))})
		}
	}
	s.add(table{caption: "Summary", head: []string{"", ""}, rows: rows})
	if labelTable != nil {
		s.add(*labelTable)
	}
	var lrows [][]string
	for _, l := range d.Layers {
		var dts []string
		for _, dt := range l.DTypes() {
			dts = append(dts, fmt.Sprint(dt))
		}
		lrows = append(lrows, []string{itoa(l.Number), itoa(l.Rows), itoa(l.DModel), strings.Join(slices.Compact(dts), ", "), itoa(len(l.Shards())), itoa(int(l.Bytes()))})
	}
	s.add(table{caption: "Layers", head: []string{"layer", "rows", "d_model", "dtype", "shards", "bytes"}, rows: lrows})
	b.r.sections = append(b.r.sections, s)
	return nil
}

// saeSections measures each SAE on its layer and draws its training curve.
func (b *builder) saeSections() error {
	if len(b.in.SAEs) == 0 {
		return nil
	}
	s := section{id: "saes", title: "Sparse autoencoders"}
	var mrows [][]string
	var details []block
	for i, p := range b.in.SAEs {
		b.progress("SAE "+p, i, len(b.in.SAEs))
		m, err := sae.LoadAny(p)
		if err != nil {
			return err
		}
		hook := -1
		if m.Metadata.HookLayer > 0 || m.Metadata.HookName != "" {
			hook = m.Metadata.HookLayer
		}
		l, _, err := b.dump.ChooseLayer(-1, hook)
		if err != nil {
			return inputerr.Errorf("SAE %s: %v", p, err)
		}
		if l.DModel != m.DIn {
			return inputerr.Errorf("SAE %s: expected d_in %d to match layer %d of %s, found d_in %d", p, l.DModel, l.Number, b.in.Data, m.DIn)
		}
		met, err := sae.Evaluate(b.ctx, m, l, sae.EvalOptions{MaxRows: b.in.EvalRows})
		if err != nil {
			return wrap(p, err)
		}
		b.saes = append(b.saes, saeRef{path: p, dIn: m.DIn, dSae: m.DSae, layer: l.Number, rows: l.Rows, sae: m})
		k := "-"
		if m.K > 0 {
			k = itoa(m.K)
		}
		mrows = append(mrows, []string{p, itoa(l.Number), string(m.Arch), itoa(m.DSae), k, itoa(met.Rows),
			fixed(met.ExplainedVariance), num(met.MSE), num(met.L0), pct(met.DeadFraction), pct(met.DenseFraction), fixed(met.CosSim), fixed(met.MaxDecoderCos)})

		if st, err := os.Stat(p); err == nil && st.IsDir() {
			b.hash("SAE "+p, filepath.Join(p, "cfg.json"))
			b.hash("SAE "+p, filepath.Join(p, "sae_weights.safetensors"))
		} else {
			b.hash("SAE", p)
		}
		cfg, err := sae.ReadSAELensConfig(p)
		if err != nil {
			details = append(details, heading{p}, para{"No cfg.json with a training record (an imported SAE): no training settings or curve."})
			continue
		}
		bl, err := b.training(p, l.Number, cfg.Raw)
		if err != nil {
			return err
		}
		details = append(details, bl...)
	}
	s.add(para{fmt.Sprintf("Each SAE is measured on the first %d rows of its layer of the dump (fewer when the layer has fewer). Explained variance is 1 - Σ||x - x̂||² / Σ||x - mean(x)||²; dead latents fire on none of those rows, dense ones on more than %s of them.", b.in.EvalRows, pct(sae.DenseThreshold))})
	s.add(table{caption: "Metrics", head: []string{"SAE", "layer", "arch", "d_sae", "k", "rows", "explained variance", "MSE", "L0", "dead", "dense", "cos(x, x̂)", "max decoder cos"}, rows: mrows, mono: []int{0}})
	if len(b.records) > 0 {
		keys := map[string]bool{}
		head := []string{"setting"}
		for _, r := range b.records {
			head = append(head, r.name)
			for k := range r.rec {
				keys[k] = true
			}
		}
		var rows [][]string
		for _, k := range slices.Sorted(maps.Keys(keys)) {
			row := []string{k}
			for _, r := range b.records {
				row = append(row, value(r.rec[k]))
			}
			rows = append(rows, row)
		}
		s.add(table{caption: "Training settings and final figures (cfg.json, metadata.rise_training)", head: head, rows: rows})
	}
	s.add(details...)
	b.r.sections = append(b.r.sections, s)
	return nil
}

// named is an SAE's training record.
type named struct {
	name string
	rec  map[string]any
}

// training shows an SAE's training record and curve, and the command that
// retrains it.
func (b *builder) training(p string, layer int, raw map[string]json.RawMessage) ([]block, error) {
	out := []block{heading{"Training of " + p}}
	rec := map[string]any{}
	if r, ok := raw["rise_training"]; ok {
		if err := json.Unmarshal(r, &rec); err != nil {
			return nil, inputerr.Errorf("%s: cfg.json: metadata field \"rise_training\": expected an object: %v", p, err)
		}
	}
	if len(rec) == 0 {
		return append(out, para{"cfg.json holds no rise_training record (an SAE trained elsewhere): no training settings or curve."}), nil
	}
	b.records = append(b.records, named{p, rec})
	data := p + "/../DUMP"
	if r, ok := raw["dataset_path"]; ok {
		json.Unmarshal(r, &data)
	}
	line := fmt.Sprintf("rise train --data %s --layer %d --arch %s --width %s", data, layer, value(rec["architecture"]), value(rec["width"]))
	if k := value(rec["k"]); k != "0" && k != "-" {
		line += " --k " + k
	}
	if a := value(rec["architecture"]); a == "standard" || a == "jumprelu" {
		line += " --l1 " + value(rec["sparsity"])
	}
	for _, f := range []struct{ flag, key string }{{"batch", "batch"}, {"lr", "lr"}, {"warmup", "warmup"}, {"decay", "decay"}, {"steps", "steps"}, {"seed", "seed"}, {"engine", "engine"}, {"b-dec-init", "b_dec_init"}} {
		if v, ok := rec[f.key]; ok {
			line += " --" + f.flag + " " + value(v)
		}
	}
	line += " --out " + p
	note := ""
	if value(rec["resumed_from"]) != "0" {
		note = "the run was resumed from step " + value(rec["resumed_from"])
	}
	b.commands = append(b.commands, command{what: "SAE " + p, line: line, note: note})
	b.seeds = append(b.seeds, []string{"SAE " + p + ": initialisation and data order", value(rec["seed"])})

	var c TrainingCurve
	if r, ok := raw[CurveKey]; ok {
		if err := json.Unmarshal(r, &c); err != nil {
			return nil, inputerr.Errorf("%s: cfg.json: metadata field \"rise_training_curve\": expected the curve rise train writes: %v", p, err)
		}
	}
	n := len(c.Step)
	if n < 2 || len(c.Loss) != n || len(c.MSE) != n {
		return append(out, para{"cfg.json holds no training curve (trained by an older rise train): none drawn."}), nil
	}
	x := make([]float64, n)
	for i, st := range c.Step {
		x[i] = float64(st)
	}
	svg, err := seriesSVG("training loss of "+p, "step", "loss (per row, scaled inputs)", x, map[string][]float64{"loss": c.Loss, "MSE": c.MSE})
	if err != nil {
		return nil, wrap(p, err)
	}
	out = append(out, b.fig("training", fmt.Sprintf("Training of %s: the loss the optimiser minimised and its reconstruction part (MSE), every %d steps.", p, max(1, c.Every)), svg))
	if len(c.L0) == n && len(c.DeadFraction) == n {
		last := n - 1
		out = append(out, para{fmt.Sprintf("At the last recorded step (%d): L0 %s, dead latents %s.", c.Step[last], num(c.L0[last]), pct(c.DeadFraction[last]))})
	}
	return out, nil
}

// value writes a JSON value of a record.
func value(v any) string {
	switch x := v.(type) {
	case nil:
		return "-"
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1e15 {
			return strconv.FormatInt(int64(x), 10)
		}
		return strconv.FormatFloat(x, 'g', -1, 64)
	case string:
		return x
	case bool:
		return strconv.FormatBool(x)
	default:
		bs, _ := json.Marshal(x)
		return string(bs)
	}
}

// atlasSections draws each atlas's map and lists its behaviours.
func (b *builder) atlasSections() error {
	for _, p := range b.in.Atlases {
		a, err := LoadAtlas(p)
		if err != nil {
			return err
		}
		b.hash("atlas", p)
		b.atlases = append(b.atlases, NamedAtlas{Name: p, Atlas: a})
	}
	b.atlases = append(b.atlases, b.in.NamedAtlases...)
	if len(b.atlases) == 0 {
		return nil
	}
	s := section{id: "atlases", title: "Atlases"}
	for i := range b.atlases {
		na := &b.atlases[i]
		a := na.Atlas
		if a == nil || len(a.Features) == 0 {
			return inputerr.Errorf("atlas %s: field \"features\": expected the decoder columns, found none", na.Name)
		}
		if err := checkAtlas(na.Name, a); err != nil {
			return err
		}
		layer := -1
		if na.SAE == "" {
			na.SAE, layer = b.matchSAE(a)
		}
		s.add(heading{na.Name})
		rows := [][]string{{"layout", a.Layout}, {"seed", strconv.FormatUint(a.Seed, 10)}, {"d_in", itoa(a.DIn)}, {"d_sae", itoa(a.DSae)},
			{"rows of the layer", itoa(a.Rows)}, {"clusters", itoa(len(a.Clusters))}}
		if na.SAE != "" {
			rows = append(rows, []string{"SAE", na.SAE})
		}
		if sp := a.Split; sp != nil {
			rows = append(rows, []string{"columns chosen on", fmt.Sprintf("%d traces (%d steps)", sp.SelectionTraces, sp.SelectionSteps)},
				[]string{"judged on (held out)", fmt.Sprintf("%d traces (%d steps), share %s, seed %d", sp.HeldOutTraces, sp.HeldOutSteps, num(sp.HoldOut), sp.Seed)})
		}
		for _, k := range slices.Sorted(maps.Keys(a.Silhouette)) {
			rows = append(rows, []string{"silhouette: " + k, fixed(a.Silhouette[k])})
		}
		s.add(table{caption: "Atlas", head: []string{"", ""}, rows: rows})
		var brows [][]string
		for _, name := range slices.Sorted(maps.Keys(a.Behaviours)) {
			bi := a.Behaviours[name]
			kept, enr := "-", "-"
			if ho := bi.HeldOut; ho != nil {
				kept, enr = itoa(ho.Kept), num(ho.Enrichment)
			}
			vecState := "yes"
			if len(bi.Vector) == 0 {
				vecState = "no: " + orDash(bi.Error)
			}
			brows = append(brows, []string{name, itoa(bi.Steps), itoa(len(bi.Columns)), kept, enr, vecState})
		}
		s.add(table{caption: "Behaviours", head: []string{"behaviour", "steps", "specific columns", "held out: kept", "held out: enrichment", "vector"}, rows: brows})
		svg, err := mapSVG(fmt.Sprintf("decoder columns of %s (%s)", na.Name, a.Layout), a.XY(), a.Groups())
		if err != nil {
			return wrap(na.Name, err)
		}
		s.add(b.fig("map", fmt.Sprintf("The %d unit decoder columns of %s laid out by %s, coloured by the behaviour they are specific to (grey: none).", len(a.Features), na.Name, a.Layout), svg))

		saeDir := na.SAE
		note := "atlas.json records neither its SAE nor its dump, --neighbors nor --min-dist: the SAE is the report's whose decoder gives the atlas's vectors, the others the report's dump and the defaults"
		if saeDir == "" {
			saeDir = "SAE_DIR"
			note = "atlas.json records neither its SAE nor its dump, --neighbors nor --min-dist; no one SAE of this report gives its behaviour vectors"
		}
		line := fmt.Sprintf("rise atlas --sae %s --data %s --layout %s --seed %d", saeDir, b.in.Data, a.Layout, a.Seed)
		if layer >= 0 {
			line += " --layer " + itoa(layer)
		}
		if len(a.ClusterChoice) == 0 {
			line += " --clusters " + itoa(len(a.Clusters))
		}
		if a.Split != nil {
			line += " --hold-out " + num(a.Split.HoldOut)
		} else {
			line += " --hold-out 0"
		}
		b.commands = append(b.commands, command{what: "atlas " + na.Name, line: line + " --out " + na.Name, note: note})
		b.seeds = append(b.seeds, []string{"atlas " + na.Name + ": layout, clusters and held-out traces", strconv.FormatUint(a.Seed, 10)})
	}
	b.r.sections = append(b.r.sections, s)
	return nil
}

// checkAtlas checks what the map needs of an atlas: finite coordinates and
// behaviour columns among its features.
func checkAtlas(name string, a *atlas.Atlas) error {
	for i, f := range a.Features {
		if math.IsNaN(f.X) || math.IsInf(f.X, 0) || math.IsNaN(f.Y) || math.IsInf(f.Y, 0) {
			return inputerr.Errorf("atlas %s: features[%d]: expected finite x and y, found %v and %v", name, i, f.X, f.Y)
		}
	}
	for _, bn := range slices.Sorted(maps.Keys(a.Behaviours)) {
		for _, c := range a.Behaviours[bn].Columns {
			if c < 0 || c >= len(a.Features) {
				return inputerr.Errorf("atlas %s: behaviours[%q].columns: expected columns 0 to %d, found %d", name, bn, len(a.Features)-1, c)
			}
		}
	}
	return nil
}

// matchSAE returns the SAE of the report the atlas was built from, or "":
// the one whose decoder gives the atlas's behaviour vectors (each the
// renormalised mean of its specific unit decoder rows) to a cosine of
// 0.999, or, when the atlas has no vector, the one SAE of its shape.
func (b *builder) matchSAE(a *atlas.Atlas) (string, int) {
	found, layer := "", -1
	for _, s := range b.saes {
		if s.dIn != a.DIn || s.dSae != a.DSae || s.rows != a.Rows || !vectorsAgree(s.sae, a) {
			continue
		}
		if found != "" {
			return "", -1
		}
		found, layer = s.path, s.layer
	}
	return found, layer
}

func vectorsAgree(s *sae.SAE, a *atlas.Atlas) bool {
	d := s.DIn
	for _, bi := range a.Behaviours {
		if len(bi.Vector) != d || len(bi.Columns) == 0 {
			continue
		}
		sum := make([]float64, d)
		for _, j := range bi.Columns {
			if j < 0 || j >= s.DSae {
				return false
			}
			row := s.WDec[j*d : (j+1)*d]
			var n float64
			for _, x := range row {
				n += float64(x) * float64(x)
			}
			if n == 0 {
				continue
			}
			n = math.Sqrt(n)
			for i, x := range row {
				sum[i] += float64(x) / n
			}
		}
		var dot, ns, nv float64
		for i, x := range sum {
			dot += x * float64(bi.Vector[i])
			ns += x * x
			nv += float64(bi.Vector[i]) * float64(bi.Vector[i])
		}
		if !(dot/math.Sqrt(ns*nv) > 0.999) {
			return false
		}
	}
	return true
}

// separation shows the silhouettes by layer of sweep.json.
func (b *builder) separation() error {
	sw := b.in.SweepValue
	name := "the workbench's sweep"
	if b.in.Sweep != "" {
		var err error
		if sw, err = LoadSweep(b.in.Sweep); err != nil {
			return err
		}
		b.hash("sweep", b.in.Sweep)
		name = b.in.Sweep
	}
	if sw == nil {
		return nil
	}
	s := section{id: "separation", title: "Separation by layer"}
	s.add(para{"Cosine silhouettes of the behaviour labels (and of short against long responses) over each layer's behaviour-specific decoder columns (\"columns\") and over sampled steps placed in decoder space (\"steps\"), each beside the same measure with the labels shuffled (RISE Fig. 3 and Appendix E)."})
	keys := map[string]bool{}
	for _, l := range sw.Layers {
		for k := range l.Columns {
			keys["columns: "+k] = true
		}
		for k := range l.Steps {
			keys["steps: "+k] = true
		}
	}
	cols := slices.Sorted(maps.Keys(keys))
	var rows [][]string
	for _, l := range sw.Layers {
		row := []string{itoa(l.Layer), orDash(l.SAE)}
		for _, k := range cols {
			view, key, _ := strings.Cut(k, ": ")
			m := l.Columns
			if view == "steps" {
				m = l.Steps
			}
			if v, ok := m[key]; ok {
				row = append(row, fixed(v))
			} else {
				row = append(row, "-")
			}
		}
		row = append(row, itoa(l.SampledSteps))
		rows = append(rows, row)
	}
	s.add(table{caption: "Silhouettes by layer", head: append(append([]string{"layer", "SAE"}, cols...), "sampled steps"), rows: rows, mono: []int{1}})
	if len(sw.Best) > 0 {
		var brows [][]string
		for _, k := range slices.Sorted(maps.Keys(sw.Best)) {
			brows = append(brows, []string{k, itoa(sw.Best[k])})
		}
		s.add(table{caption: "Best layer (the largest silhouette above its shuffled baseline)", head: []string{"measure", "layer"}, rows: brows})
	}
	if len(sw.Layers) >= 2 {
		x, ys, err := atlas.SweepCurves(sw.Layers)
		if err == nil {
			svg, err := curvesSVG("separation by layer (cosine silhouette)", "layer", "silhouette", x, ys, nil)
			if err != nil {
				return wrap(name, err)
			}
			s.add(b.fig("separation", "Silhouettes by layer, with their shuffled-label baselines.", svg))
		}
	}
	var saes []string
	for _, l := range sw.Layers {
		saes = append(saes, "--sae "+orDash(l.SAE))
	}
	if b.in.Sweep != "" {
		b.commands = append(b.commands, command{what: "separation " + name,
			line: fmt.Sprintf("rise atlas --sweep --data %s %s --seed %d --out %s", orDash(sw.Data), strings.Join(saes, " "), sw.Seed, name),
			note: "sweep.json does not record --steps or --hold-out: the defaults"})
		b.seeds = append(b.seeds, []string{"separation " + name + ": step sample and shuffles", strconv.FormatUint(sw.Seed, 10)})
	}
	b.r.sections = append(b.r.sections, s)
	return nil
}

// vectors lists the atlases' behaviour vectors and their cosines.
func (b *builder) vectors() error {
	type vector struct {
		name        string
		v, shuffled []float32
	}
	var vs []vector
	for _, na := range b.atlases {
		for _, name := range slices.Sorted(maps.Keys(na.Atlas.Behaviours)) {
			bi := na.Atlas.Behaviours[name]
			if len(bi.Vector) > 0 {
				vs = append(vs, vector{na.Name + "#" + name, bi.Vector, bi.ShuffledVector})
			}
		}
	}
	if len(b.atlases) == 0 {
		return nil
	}
	s := section{id: "vectors", title: "Behaviour vectors"}
	if len(vs) == 0 {
		s.add(para{"No atlas has a behaviour vector (no behaviour had columns specific to it)."})
		b.r.sections = append(b.r.sections, s)
		return nil
	}
	s.add(para{"Each behaviour vector is the renormalised mean of the decoder columns specific to the behaviour (RISE §4); its shuffled-label twin is the same construction with the labels shuffled, the control rise steer runs. The table gives the vectors' cosines with each other and with their twins (\"-\" for vectors of different widths, or no twin)."})
	head := []string{"vector"}
	for i := range vs {
		head = append(head, fmt.Sprintf("v%d", i+1))
	}
	head = append(head, "its shuffled-label twin")
	var rows [][]string
	for i, a := range vs {
		row := []string{fmt.Sprintf("v%d %s", i+1, a.name)}
		for _, c := range vs {
			row = append(row, cosine(a.v, c.v))
		}
		row = append(row, cosine(a.v, a.shuffled))
		rows = append(rows, row)
	}
	s.add(table{caption: "Cosines", head: head, rows: rows})
	b.r.sections = append(b.r.sections, s)
	return nil
}

func cosine(a, b []float32) string {
	if len(a) != len(b) {
		return "-"
	}
	if _, err := vec.Unit(a); err != nil {
		return "-"
	}
	if _, err := vec.Unit(b); err != nil {
		return "-"
	}
	return fixed(vec.Cosine(a, b))
}
