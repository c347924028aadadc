package report

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/rise-interp/rise/internal/inputerr"
	"github.com/rise-interp/rise/sae/atlas"
	"github.com/rise-interp/rise/steer"
)

// steering shows each sweep with its intervals, p-values and controls.
func (b *builder) steering() error {
	if len(b.in.Steer) == 0 && len(b.in.SteerValues) == 0 {
		return nil
	}
	s := section{id: "steering", title: "Steering sweeps"}
	s.add(para{"Behaviour steps per generation at each strength, with 95% percentile bootstrap intervals over the prompts and the two-sided p-value of a paired sign-flip test against strength 0 (same prompts and seeds). The controls are the same sweep with random unit directions and with the shuffled-label vector; their band is the range of the controls' means at each strength."})
	all := make([]NamedSteering, 0, len(b.in.Steer)+len(b.in.SteerValues))
	for _, p := range b.in.Steer {
		st, err := LoadSteering(p)
		if err != nil {
			return err
		}
		b.hash("steering results", p)
		all = append(all, NamedSteering{Name: p, Steering: st})
	}
	for _, ns := range b.in.SteerValues {
		if ns.Steering == nil || len(ns.Steering.Runs) == 0 {
			return inputerr.Errorf("steering sweep %s: expected at least one strength, found none", ns.Name)
		}
	}
	all = append(all, b.in.SteerValues...)
	for i, ns := range all {
		p, st := ns.Name, ns.Steering
		fromFile := i < len(b.in.Steer)
		s.add(heading{p})
		var ctrlNames []string
		random := 0
		for _, c := range st.Controls {
			ctrlNames = append(ctrlNames, c.Name)
			if strings.HasPrefix(c.Name, "random ") {
				random++
			}
		}
		s.add(table{caption: "Sweep", head: []string{"", ""}, rows: [][]string{
			{"model", orDash(st.Model)}, {"spec", orDash(st.Spec)}, {"prompts", itoa(st.Prompts)}, {"seed", strconv.FormatUint(st.Seed, 10)},
			{"max tokens", itoa(st.MaxTokens)}, {"temperature", num(st.Temperature)}, {"controls", orDash(strings.Join(ctrlNames, ", "))},
		}})
		pv := func(r steer.Run, k string) string {
			if r.Strength == 0 {
				return "-"
			}
			if v, ok := r.PValues[k]; ok {
				return strconv.FormatFloat(v, 'g', 3, 64)
			}
			return "-"
		}
		band := func(name string, i int, r steer.Run) string {
			cb, ok := st.ControlBand[name]
			iv, has := r.Behaviours[name]
			if !ok || !has {
				return "-"
			}
			where := "inside"
			if iv.Mean < cb.Lo[i] || iv.Mean > cb.Hi[i] {
				where = "outside"
			}
			return fmt.Sprintf("[%s, %s] %s", fixed(cb.Lo[i]), fixed(cb.Hi[i]), where)
		}
		var rows [][]string
		for i, r := range st.Runs {
			acc, accP := "-", "-"
			if r.AccuracyInterval != nil {
				acc, accP = interval(*r.AccuracyInterval), pv(r, "accuracy")
			}
			rows = append(rows, []string{num(r.Strength),
				behaviour(r, "reflection"), pv(r, "reflection"), band("reflection", i, r),
				behaviour(r, "backtracking"), pv(r, "backtracking"), band("backtracking", i, r),
				behaviour(r, "other"), interval(r.TokensInterval), pv(r, "tokens"), pct(r.LengthStops), acc, accP})
		}
		s.add(table{caption: "Steps per generation by strength", head: []string{"strength", "reflection [95%]", "p", "controls", "backtracking [95%]", "p", "controls", "other [95%]", "tokens [95%]", "p", "at the token limit", "accuracy [95%]", "p"}, rows: rows})
		if len(st.Controls) > 0 {
			var crows [][]string
			for _, c := range st.Controls {
				for _, r := range c.Runs {
					crows = append(crows, []string{c.Name, num(r.Strength), behaviour(r, "reflection"), pv(r, "reflection"), behaviour(r, "backtracking"), pv(r, "backtracking")})
				}
			}
			s.add(table{caption: "Controls", head: []string{"control", "strength", "reflection [95%]", "p", "backtracking [95%]", "p"}, rows: crows})
		}
		if len(st.Runs) >= 2 {
			svg, err := doseSVG(st)
			if err != nil {
				return wrap(p, err)
			}
			if svg != nil {
				s.add(b.fig("dose", fmt.Sprintf("Reflection and backtracking steps per generation by steering strength in %s, with 95%% intervals and the controls' range (dashed).", p), svg))
			}
		}
		var alphas []string
		for _, r := range st.Runs {
			alphas = append(alphas, strconv.FormatFloat(r.Strength, 'g', -1, 64))
		}
		if !fromFile {
			b.commands = append(b.commands, command{what: "steering " + p, line: "# " + ns.Command, note: "made in the workbench"})
			b.seeds = append(b.seeds, []string{"steering " + p + ": sampling, controls, bootstrap and sign flips", strconv.FormatUint(st.Seed, 10)})
			continue
		}
		b.commands = append(b.commands, command{what: "steering " + p,
			line: fmt.Sprintf("rise steer --model %s --steer %s --alphas=%s --prompts PROMPTS --limit %d --max-tokens %d --temperature %s --seed %d --controls %d --out %s",
				orDash(st.Model), orDash(st.Spec), strings.Join(alphas, ","), st.Prompts, st.MaxTokens, strconv.FormatFloat(st.Temperature, 'g', -1, 64), st.Seed, random, p),
			note: "results.json does not record the prompts file, the tokenizer or the chat template"})
		b.seeds = append(b.seeds, []string{"steering " + p + ": sampling, controls, bootstrap and sign flips", strconv.FormatUint(st.Seed, 10)})
	}
	b.r.sections = append(b.r.sections, s)
	return nil
}

// doseSVG draws a sweep's dose-response curves as rise steer --svg does.
func doseSVG(st *Steering) ([]byte, error) {
	x := make([]float64, len(st.Runs))
	ys := map[string][]float64{}
	var bands []atlas.Band
	for _, bname := range []string{"reflection", "backtracking"} {
		if slices.ContainsFunc(st.Runs, func(r steer.Run) bool { _, ok := r.Behaviours[bname]; return !ok }) {
			continue // not counted at every strength: not drawn
		}
		name := bname + " steps"
		mean, lo, hi := make([]float64, len(st.Runs)), make([]float64, len(st.Runs)), make([]float64, len(st.Runs))
		for i, r := range st.Runs {
			x[i] = r.Strength
			iv := r.Behaviours[bname]
			mean[i], lo[i], hi[i] = iv.Mean, iv.Lo, iv.Hi
		}
		ys[name] = mean
		if cb, ok := st.ControlBand[bname]; ok {
			bands = append(bands, atlas.Band{Name: bname + ": controls", Series: name, Lo: cb.Lo, Hi: cb.Hi, Dashed: true})
		}
		bands = append(bands, atlas.Band{Name: bname + ": 95% interval", Series: name, Lo: lo, Hi: hi})
	}
	if len(ys) == 0 {
		return nil, nil
	}
	return curvesSVG("behaviour steps per generation by steering strength", "strength", "steps per generation", x, ys, bands)
}

// confidence shows each confidence vector: its entropy curve, what it did
// and its top columns.
func (b *builder) confidence() error {
	if len(b.in.Confidence) == 0 {
		return nil
	}
	s := section{id: "confidence", title: "Confidence vectors"}
	s.add(para{"RISE Eq. 7: scores over the SAE's decoder columns learned so that adding them at step boundaries minimises the next-token entropy; the vector is measured on held-out step boundaries (entropy) and prompts (reflection steps per generation)."})
	for _, p := range b.in.Confidence {
		c, err := LoadConfidence(p)
		if err != nil {
			return err
		}
		b.hash("confidence vector", p)
		s.add(heading{p})
		s.add(table{caption: "Confidence vector", head: []string{"", ""}, rows: [][]string{
			{"model", orDash(c.Model)}, {"SAE", orDash(c.SAE)}, {"layer", itoa(c.Layer)}, {"iterations", itoa(c.Iters)}, {"training states", itoa(c.States)},
			{"norm", num(c.Norm)}, {"entropy before → after", fmt.Sprintf("%s → %s (%d states)", fixed(c.EntropyBefore), fixed(c.EntropyAfter), c.EntropyStates)},
			{"reflection steps per generation before → after", fmt.Sprintf("%s → %s (%d prompts)", fixed(c.ReflectionStepsBefore), fixed(c.ReflectionStepsAfter), c.Prompts)},
		}})
		var rows [][]string
		for i, t := range c.Top {
			if i == 16 {
				break
			}
			rows = append(rows, []string{itoa(i + 1), itoa(t.ID), num(t.Score)})
		}
		if len(rows) > 0 {
			s.add(table{caption: "Top columns", head: []string{"rank", "column", "score"}, rows: rows})
		}
		if len(c.Curve) >= 2 {
			x := make([]float64, len(c.Curve))
			for i := range x {
				x[i] = float64(i + 1)
			}
			svg, err := seriesSVG("next-token entropy while learning the scores", "iteration", "entropy (nats)", x, map[string][]float64{"entropy": c.Curve})
			if err != nil {
				return wrap(p, err)
			}
			s.add(b.fig("confidence", fmt.Sprintf("Mean next-token entropy at the training step boundaries over the iterations of %s.", p), svg))
		}
		b.commands = append(b.commands, command{what: "confidence " + p,
			line: fmt.Sprintf("rise confidence --model %s --sae %s --layer %d --iters %d --traces TRACES --out %s", orDash(c.Model), orDash(c.SAE), c.Layer, c.Iters, p),
			note: "conf.json does not record the traces, prompts, batch, learning rate or seed"})
	}
	b.r.sections = append(b.r.sections, s)
	return nil
}

// model records the model's files.
func (b *builder) model() error {
	if b.in.Model == "" {
		return nil
	}
	st, err := os.Stat(b.in.Model)
	if err != nil {
		return inputerr.Wrap(err)
	}
	if !st.IsDir() {
		b.hash("model", b.in.Model)
		return nil
	}
	ents, err := os.ReadDir(b.in.Model)
	if err != nil {
		return inputerr.Wrap(err)
	}
	for _, e := range ents { // ReadDir sorts by name
		if e.Type().IsRegular() {
			b.hash("model", filepath.Join(b.in.Model, e.Name()))
		}
	}
	return nil
}
