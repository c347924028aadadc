package web

import (
	"context"
	"maps"
	"slices"

	"github.com/rise-interp/rise/activations"
	"github.com/rise-interp/rise/sae"
	"github.com/rise-interp/rise/sae/atlas"
)

// probeTokenFeatures records in a freshly built atlas the data-only token
// probe (atlas.ProbeTokensData) of every behaviour that has specific
// columns and a keyword rule, leaving flagged columns out of its vector. A
// dump whose steps of other behaviours never carry the behaviour's
// trigger (any dump labelled by the keyword rules) has nothing to compare,
// and its features get no verdict: the probe needs a model then
// (rise probe-tokens --model).
func probeTokenFeatures(ctx context.Context, a *atlas.Atlas, s *sae.SAE, layer *activations.Layer, steps []activations.Step) error {
	for _, name := range slices.Sorted(maps.Keys(a.Behaviours)) {
		info := a.Behaviours[name]
		if _, _, ok := atlas.DefaultTriggers(name); !ok || len(info.Columns) == 0 {
			continue
		}
		p, err := atlas.ProbeTokensData(ctx, s, layer, steps, info.Columns, atlas.TokenProbeOptions{Behaviour: name})
		if err != nil {
			if ctx.Err() != nil {
				return err
			}
			continue
		}
		if err := a.RecordTokenProbe(s, p, false); err != nil {
			return err
		}
	}
	return nil
}
