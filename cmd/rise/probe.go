package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/rise-interp/rise/activations"
	"github.com/rise-interp/rise/sae"
	"github.com/rise-interp/rise/sae/atlas"
	"github.com/rise-interp/rise/steer"
)

func init() {
	var (
		mf                                   modelFlags
		atlasPath, saePath, data, tracesPath string
		out, behaviours                      string
		triggers                             stringList
		layer, limit, minSteps               int
		threshold                            float64
		seed                                 uint64
		keep                                 bool
	)
	register(&command{
		name:    "probe-tokens",
		noArgs:  true,
		summary: "flag behaviour features that only see the behaviour's trigger words",
		usage: "--atlas atlas.json --sae SAE_DIR --model PATH --traces traces.jsonl [--layer L] [--behaviour B,B...] [--trigger B=PHRASE] [--limit N] [--keep-token-features] [--out atlas.json]\n" +
			"       rise probe-tokens --atlas atlas.json --sae SAE_DIR --data DUMP [--layer L] [--behaviour B,B...] [--trigger B=PHRASE]...",
		help: `Measures, for each of a behaviour's specific features in the atlas, how much
of its activation the behaviour's trigger words alone explain:

	ratio = mean activation on steps of other behaviours (or neutral
	        "other" steps) that carry the trigger
	      / mean activation on the behaviour's own steps

and flags the feature when the ratio is at least --threshold (0.5: the
trigger alone brings half of what the behaviour brings). A replication study
found that 45-90% of the "reasoning features" chosen by contrast fire on the
injected trigger tokens alone.

With --model, each trace of --traces (or of the dump at --data) runs twice:
as it is, and with the trigger ("Wait" for reflection, "Alternatively" for
backtracking, or --trigger B=PHRASE) written at the head of one of its steps
that does not show the behaviour; the rows are recorded after block --layer
at the step delimiters, as rise dump does, and encoded with the SAE.
Without a model (--data alone) the dump's steps of other behaviours whose
text carries a trigger (the keyword rule's phrases, or each --trigger
B=PHRASE) are compared with the behaviour's steps without one.

The atlas is rewritten (or written to --out) with each probed feature's ratio
and flag ("token" in features), the probe per behaviour ("token_probes"),
the flagged columns ("token_columns") and the behaviour vector rebuilt
without them ("vector_with_token_features" keeps the vector with them);
--keep-token-features records the flags and leaves the vectors as built.

Examples:

	rise probe-tokens --atlas A.json --sae S --model M --traces traces.jsonl --layer 2 --limit 200
	rise probe-tokens --atlas A.json --sae S --data D --trigger reflection=Wait`,
		setFlags: func(fs *flag.FlagSet) {
			mf.set(fs)
			triggers = nil
			fs.StringVar(&atlasPath, "atlas", "", "the atlas whose behaviour features to probe (required; rewritten unless --out)")
			fs.StringVar(&saePath, "sae", "", "the SAE the atlas was built from (required)")
			fs.StringVar(&data, "data", "", "the activation dump: without --model, the steps and rows to compare; with it, where the traces come from unless --traces")
			fs.StringVar(&tracesPath, "traces", "", "with --model: traces.jsonl to run")
			fs.IntVar(&layer, "layer", -1, "the layer the SAE reads (default: the SAE's hook layer, or the dump's only layer)")
			fs.StringVar(&behaviours, "behaviour", "reflection,backtracking", "the behaviours to probe, comma-separated")
			fs.Var(&triggers, "trigger", "B=PHRASE: a trigger phrase of behaviour B (repeat for several; with --model the first is injected)")
			fs.IntVar(&limit, "limit", 200, "with --model: run only the first N traces (0: all)")
			fs.Float64Var(&threshold, "threshold", atlas.DefaultTokenThreshold, "flag a feature whose ratio is at least this")
			fs.IntVar(&minSteps, "min-steps", atlas.DefaultTokenMinSteps, "the fewest steps each side of the ratio needs")
			fs.Uint64Var(&seed, "seed", 1, "with --model: chooses the step of each trace the trigger goes into")
			fs.BoolVar(&keep, "keep-token-features", false, "record the flags but keep flagged features in the behaviour vectors")
			fs.StringVar(&out, "out", "", "write the atlas here instead of over --atlas")
		},
		run: func(ctx context.Context, e *env, fs *flag.FlagSet) error {
			if atlasPath == "" || saePath == "" {
				return usagef("--atlas and --sae are required")
			}
			if mf.model == "" && data == "" {
				return usagef("give --model (with --traces or --data) to inject the triggers, or --data to compare a dump's steps")
			}
			if mf.backend != "" {
				return usagef("--backend: the token probe runs the native runtime (--model)")
			}
			if !(threshold > 0) {
				return usagef("--threshold: expected a positive ratio, found %v", threshold)
			}
			if minSteps < 1 {
				return usagef("--min-steps: expected at least 1, found %d", minSteps)
			}
			bs := splitList(behaviours)
			if len(bs) == 0 {
				return usagef("--behaviour: expected at least one behaviour")
			}
			trig := map[string][]string{}
			for _, t := range triggers {
				b, p, ok := strings.Cut(t, "=")
				if !ok || b == "" || strings.TrimSpace(p) == "" {
					return usagef("--trigger %q: expected BEHAVIOUR=PHRASE", t)
				}
				trig[b] = append(trig[b], p)
			}
			a, err := atlas.Load(atlasPath)
			if err != nil {
				return err
			}
			s, err := sae.LoadAny(saePath)
			if err != nil {
				return err
			}
			if a.DSae != s.DSae || a.DIn != s.DIn {
				return fmt.Errorf("%s: the atlas has d_in %d and d_sae %d, but the SAE %s has %d and %d", atlasPath, a.DIn, a.DSae, saePath, s.DIn, s.DSae)
			}
			for _, b := range bs {
				if _, ok := a.Behaviours[b]; !ok {
					return fmt.Errorf("%s: no behaviour %q in the atlas", atlasPath, b)
				}
			}
			opts := func(b string) atlas.TokenProbeOptions {
				return atlas.TokenProbeOptions{Behaviour: b, Triggers: trig[b], Threshold: threshold, MinSteps: minSteps}
			}
			var probes []*atlas.TokenProbe
			if mf.model != "" {
				probes, err = probeWithModel(ctx, e, &mf, s, a, bs, data, tracesPath, layer, limit, seed, trig, opts)
			} else {
				probes, err = probeData(ctx, e, s, a, bs, data, saePath, layer, opts)
			}
			if err != nil {
				return err
			}
			for _, p := range probes {
				if err := a.RecordTokenProbe(s, p, keep); err != nil {
					return err
				}
				printTokenProbe(e.stdout, p, a.Behaviours[p.Behaviour], keep)
			}
			if out == "" {
				out = atlasPath
			}
			if err := a.Save(out); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "wrote %s\n", out)
			return nil
		},
	})
}

// probeData runs the data-only probe of each behaviour on a dump.
func probeData(ctx context.Context, e *env, s *sae.SAE, a *atlas.Atlas, bs []string, data, saePath string, layer int, opts func(string) atlas.TokenProbeOptions) ([]*atlas.TokenProbe, error) {
	in, err := openSAELayer(ctx, saePath, data, layer)
	if err != nil {
		return nil, err
	}
	defer in.dump.Close()
	if in.dump.StepsPath == "" {
		return nil, fmt.Errorf("%s has no steps.jsonl: the probe needs the steps' texts and labels", data)
	}
	if in.layer.Rows != a.Rows {
		return nil, fmt.Errorf("layer %d of %s has %d rows, but the atlas was built on %d", in.layer.Number, data, in.layer.Rows, a.Rows)
	}
	steps, err := activations.ReadSteps(in.dump.StepsPath)
	if err != nil {
		return nil, err
	}
	var probes []*atlas.TokenProbe
	for _, b := range bs {
		bar := newProgress(e.stderr, "probe "+b)
		p, err := atlas.ProbeTokensData(ctx, in.sae, in.layer, steps, a.Behaviours[b].Columns, opts(b))
		bar.done()
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", data, b, err)
		}
		probes = append(probes, p)
	}
	return probes, nil
}

// probeWithModel runs the injection probe of each behaviour on the model.
func probeWithModel(ctx context.Context, e *env, mf *modelFlags, s *sae.SAE, a *atlas.Atlas, bs []string, data, tracesPath string, layer, limit int, seed uint64,
	trig map[string][]string, opts func(string) atlas.TokenProbeOptions) ([]*atlas.TokenProbe, error) {
	if tracesPath == "" {
		if data == "" {
			return nil, usagef("--model needs --traces (or --data with a traces.jsonl)")
		}
		d, err := activations.OpenContext(ctx, data)
		if err != nil {
			return nil, err
		}
		tracesPath = d.TracesPath
		d.Close()
		if tracesPath == "" {
			return nil, fmt.Errorf("%s has no traces.jsonl to run: give --traces", data)
		}
	}
	if layer < 0 {
		if layer = hookLayer(s); layer < 0 {
			return nil, usagef("--layer is required: the SAE names no hook layer")
		}
	}
	if limit < 0 {
		return nil, usagef("--limit: expected 0 (all) or more, found %d", limit)
	}
	traces, err := activations.ReadTraces(tracesPath)
	if err != nil {
		return nil, err
	}
	if limit > 0 && limit < len(traces) {
		traces = traces[:limit]
	}
	b, err := mf.load(ctx)
	if err != nil {
		return nil, err
	}
	n, ok := b.(*steer.Native)
	if !ok {
		return nil, usagef("the token probe runs the native runtime (--model)")
	}
	var probes []*atlas.TokenProbe
	for _, name := range bs {
		var inject string
		if t := trig[name]; len(t) > 0 {
			inject = t[0]
		}
		bar := newProgress(e.stderr, "probe "+name)
		p, err := steer.ProbeTokensModel(ctx, n.Model, n.Tokenizer, s, traces, a.Behaviours[name].Columns, steer.TokenInjectOptions{
			TokenProbeOptions: opts(name), Layer: layer, Inject: inject, Seed: seed,
			Capture:  steer.CaptureOptions{Wrap: mf.wrapFunc()},
			Progress: func(d, t int) { bar.update(int64(d), int64(t)) }})
		bar.done()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		probes = append(probes, p)
	}
	return probes, nil
}

// printTokenProbe reports one behaviour's probe.
func printTokenProbe(w io.Writer, p *atlas.TokenProbe, info atlas.BehaviourInfo, keep bool) {
	fmt.Fprintf(w, "%s: %d of %d features flagged (ratio ≥ %g), %s %s; %d true steps, %d trigger steps\n",
		p.Behaviour, p.Flagged, len(p.Features), p.Threshold, map[string]string{atlas.TokenModeInjected: "injected", atlas.TokenModeData: "found in the data:"}[p.Mode],
		strings.Join(p.Triggers, ", "), p.TrueSteps, p.TriggerSteps)
	for _, sc := range p.Features {
		mark := ""
		if sc.Flagged {
			mark = "  token feature"
		}
		fmt.Fprintf(w, "  feature %5d  ratio %7.3f  (trigger %.4f, true %.4f, baseline %.4f)%s\n", sc.Feature, sc.Ratio, sc.Trigger, sc.True, sc.Baseline, mark)
	}
	switch {
	case p.Flagged == 0:
	case keep:
		fmt.Fprintf(w, "  the vector keeps its %d flagged columns (--keep-token-features)\n", p.Flagged)
	case info.Vector == nil:
		fmt.Fprintf(w, "  no vector: %s\n", info.Error)
	default:
		fmt.Fprintf(w, "  the vector now averages %d columns, leaving out %d\n", len(info.Columns)-len(info.TokenColumns), len(info.TokenColumns))
	}
}

// splitList splits a comma-separated list, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, x := range strings.Split(s, ",") {
		if x = strings.TrimSpace(x); x != "" {
			out = append(out, x)
		}
	}
	return out
}
