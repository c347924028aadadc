package main

import (
	"context"
	"fmt"

	"github.com/rise-interp/rise/activations"
	"github.com/rise-interp/rise/sae"
)

// saeLayer is an SAE with the layer of an activation dump it reads.
type saeLayer struct {
	sae   *sae.SAE
	dump  *activations.Dump // the caller closes it
	layer *activations.Layer
	why   string // how the layer was chosen, for the report
}

// openSAELayer loads the SAE at saePath, opens the dump at data and picks
// the layer the SAE reads (chooseLayer: --layer when want is not negative,
// else the SAE's hook layer, else the dump's only layer), whose rows must be
// as wide as the SAE's input.
func openSAELayer(ctx context.Context, saePath, data string, want int) (*saeLayer, error) {
	s, err := sae.LoadAny(saePath)
	if err != nil {
		return nil, err
	}
	dump, err := activations.OpenContext(ctx, data)
	if err != nil {
		return nil, err
	}
	l, why, err := chooseLayer(dump, want, hookLayer(s))
	if err == nil {
		err = checkSAEWidth(s, saePath, l, data)
	}
	if err != nil {
		dump.Close()
		return nil, err
	}
	return &saeLayer{sae: s, dump: dump, layer: l, why: why}, nil
}

// readSteps reads the steps of the dump at data, or says that it has none
// and what the command needs them for.
func (in *saeLayer) readSteps(data, need string) ([]activations.Step, error) {
	if in.dump.StepsPath == "" {
		return nil, fmt.Errorf("%s has no steps.jsonl: %s", data, need)
	}
	return activations.ReadSteps(in.dump.StepsPath)
}

// openSAESteps opens the SAE and the dump layer it reads, as openSAELayer
// does, and reads the dump's steps, which the command needs for need (see
// readSteps). On success the caller closes the returned layer's dump.
func openSAESteps(ctx context.Context, saePath, data string, want int, need string) (*saeLayer, []activations.Step, error) {
	in, err := openSAELayer(ctx, saePath, data, want)
	if err != nil {
		return nil, nil, err
	}
	steps, err := in.readSteps(data, need)
	if err != nil {
		in.dump.Close()
		return nil, nil, err
	}
	return in, steps, nil
}

// checkSAEWidth checks that the rows of layer l of the dump at data are as
// wide as the input of the SAE s, loaded from saePath.
func checkSAEWidth(s *sae.SAE, saePath string, l *activations.Layer, data string) error {
	if l.DModel != s.DIn {
		return fmt.Errorf("the SAE %s takes d_in %d, but layer %d of %s has d_model %d", saePath, s.DIn, l.Number, data, l.DModel)
	}
	return nil
}

// hookLayer is the SAE's hook layer for chooseLayer, -1 when its metadata
// names none.
func hookLayer(s *sae.SAE) int {
	if s.Metadata.HookLayer > 0 || s.Metadata.HookName != "" {
		return s.Metadata.HookLayer
	}
	return -1
}
