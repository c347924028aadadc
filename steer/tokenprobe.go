package steer

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/rise-interp/rise/activations"
	"github.com/rise-interp/rise/internal/inputerr"
	"github.com/rise-interp/rise/sae"
	"github.com/rise-interp/rise/sae/atlas"
	"github.com/rise-interp/rise/steer/model"
)

// TokenInjectOptions configure ProbeTokensModel.
type TokenInjectOptions struct {
	atlas.TokenProbeOptions
	// Layer is the block whose output the SAE reads.
	Layer int
	// Inject is the phrase written at the head of a step ("Wait"); ""
	// means the behaviour's default (atlas.DefaultTriggers).
	Inject string
	// Capture sets the delimiter, the chat template (Wrap), the labelling
	// rules (Matcher) and the chunk of the runs; its Layers are ignored.
	Capture CaptureOptions
	// Seed chooses the step of each trace the trigger is injected into.
	Seed uint64
	// Progress, when not nil, is told the traces done and their number.
	Progress func(done, total int)
}

// ProbeTokensModel is the token probe with a model (atlas.TokenProbe, mode
// "injected"). Every trace runs twice through m: as it is, and with the
// trigger written at the head of one of its steps that does not show the
// behaviour (chosen at random with o.Seed; a step of another behaviour or
// a neutral "other" step). The steps labelled with the behaviour in the
// first run are the true steps; the injected step in the second run is a
// trigger step, and the same step in the first run its baseline. Steps are
// labelled by o.Capture.Matcher (RISE's keyword rules by default); the
// injected step keeps the label it had. Rows are the residual stream after
// block o.Layer at each step's delimiter, as rise dump records them, and
// features are encoded with s.
func ProbeTokensModel(ctx context.Context, m *model.Model, tok model.Tokenizer, s *sae.SAE, traces []activations.Trace, features []int, o TokenInjectOptions) (*atlas.TokenProbe, error) {
	switch {
	case o.Behaviour == "":
		return nil, inputerr.Errorf("token probe: no behaviour given")
	case s == nil:
		return nil, errors.New("token probe: no SAE given")
	case s.DIn != m.Dim:
		return nil, inputerr.Errorf("token probe: the SAE takes rows of %d values but the model's residual stream has %d", s.DIn, m.Dim)
	case len(traces) == 0:
		return nil, inputerr.Errorf("token probe: no traces to run")
	}
	inject := o.Inject
	if inject == "" {
		_, d, ok := atlas.DefaultTriggers(o.Behaviour)
		if !ok {
			return nil, inputerr.Errorf("token probe: behaviour %q has no keyword rule; give the phrase to inject", o.Behaviour)
		}
		inject = d
	}
	if strings.TrimSpace(inject) == "" || strings.Contains(inject, "\n") {
		return nil, inputerr.Errorf("token probe: the phrase to inject must be a non-empty line, got %q", inject)
	}
	co := o.Capture
	co.Layers = []int{o.Layer}
	co.Progress = nil
	if _, err := co.normalise(m.Layers); err != nil {
		return nil, err
	}
	tally, err := atlas.NewTokenTally(s, features)
	if err != nil {
		return nil, inputerr.Wrap(err)
	}
	d := m.Dim
	one := func(tr activations.Trace) (*TraceRecord, error) {
		var rec *TraceRecord
		err := CaptureRecords(ctx, m, tok, []activations.Trace{tr}, co, func(r TraceRecord) error {
			r.seq = nil
			rec = &r
			return nil
		})
		return rec, err
	}
	for ti, tr := range traces {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("token probe: %w", err)
		}
		rec, err := one(tr)
		if err != nil {
			return nil, err
		}
		if rec == nil {
			continue
		}
		groups := make([]atlas.TokenGroup, len(rec.Steps))
		var others []int
		for i, st := range rec.Steps {
			if slices.Contains(co.Matcher.Labels(st.Text), o.Behaviour) {
				groups[i] = atlas.TokenTrue
			} else {
				others = append(others, i)
			}
		}
		if len(others) > 0 {
			r := rand.New(rand.NewPCG(o.Seed, uint64(ti)))
			i := others[r.IntN(len(others))]
			st := rec.Steps[i]
			mod := tr
			mod.Response = tr.Response[:st.CharStart] + atlas.InjectTrigger(inject, tr.Response[st.CharStart:st.CharEnd]) + tr.Response[st.CharEnd:]
			inj, err := one(mod)
			if err != nil {
				return nil, err
			}
			// The trigger adds no delimiter, so the steps are the same
			// ones; a step cut off by the model's context is left out.
			if inj != nil && len(inj.Steps) > i && strings.HasPrefix(inj.Steps[i].Text, inject) {
				groups[i] = atlas.TokenBaseline
				tally.Add(inj.Rows[0][i*d:(i+1)*d], []atlas.TokenGroup{atlas.TokenTrigger})
			}
		}
		tally.Add(rec.Rows[0], groups)
		if o.Progress != nil {
			o.Progress(ti+1, len(traces))
		}
	}
	p, err := tally.Probe(atlas.TokenModeInjected, []string{inject}, false, o.TokenProbeOptions)
	if err != nil {
		return nil, inputerr.Wrap(err)
	}
	return p, nil
}
