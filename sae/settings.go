package sae

import "fmt"

// Settings are the training choices a user makes, as the command line and
// the workbench take them: a preset, then the values given on top of it.
// A zero value leaves the preset's (or TrainConfig.Defaults') choice.
type Settings struct {
	Preset     string // "" or "rise" (RISEPreset)
	Arch       string // ParseArch's names
	Width, K   int
	Batch      int
	Epochs     int
	Steps      int
	DeadWindow int
	Resample   int     // ResampleEvery
	Sparsity   float64 // λ of the L1 penalty
	AuxK       float64
	LR         float64
	Warmup     float64
	Decay      string
}

// Config overlays the settings on their preset. Errors name the setting
// ("preset: ...", "arch: ...", "k: ...").
func (o Settings) Config() (TrainConfig, error) {
	var cfg TrainConfig
	switch o.Preset {
	case "":
	case "rise":
		cfg = RISEPreset()
	default:
		return cfg, fmt.Errorf("preset: unknown recipe %q (known: rise)", o.Preset)
	}
	if o.Arch != "" {
		a, err := ParseArch(o.Arch)
		if err != nil {
			return cfg, fmt.Errorf("arch: %w", err)
		}
		cfg.Arch = a
	}
	for _, f := range []struct {
		dst *int
		v   int
	}{{&cfg.Width, o.Width}, {&cfg.K, o.K}, {&cfg.Batch, o.Batch}, {&cfg.Epochs, o.Epochs}, {&cfg.Steps, o.Steps}, {&cfg.DeadWindow, o.DeadWindow}, {&cfg.ResampleEvery, o.Resample}} {
		if f.v != 0 {
			*f.dst = f.v
		}
	}
	if o.Sparsity != 0 {
		cfg.Sparsity = float32(o.Sparsity)
	}
	if o.AuxK != 0 {
		cfg.AuxKCoeff = float32(o.AuxK)
	}
	if o.LR != 0 {
		cfg.LR = o.LR
	}
	if o.Warmup != 0 {
		cfg.Warmup = o.Warmup
	}
	if o.Decay != "" {
		cfg.Decay = o.Decay
	}
	if (cfg.Arch == TopK || cfg.Arch == BatchTopK) && cfg.K == 0 {
		return cfg, &MissingKError{Arch: cfg.Arch}
	}
	return cfg, nil
}

// MissingKError says that a TopK-family architecture was chosen without k.
type MissingKError struct{ Arch Arch }

func (e *MissingKError) Error() string { return fmt.Sprintf("k: architecture %s needs k", e.Arch) }
