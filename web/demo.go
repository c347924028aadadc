package web

import (
	"context"
	"os"
	"path/filepath"

	"github.com/rise-interp/rise/activations/synth"
)

// DemoVersion names the demo's directory inside the cache; it changes when
// the demo's data or recipe does, so an old cache is not mistaken for the
// current demo.
const DemoVersion = "demo-v2"

// Demo SAE recipe: a TopK SAE the planted dump's features fit in, trained
// for long enough to find most of them (a minute or less on two cores).
const (
	DemoDataset = "demo"
	DemoSAE     = "demo-topk"
	demoWidth   = 1024
	demoK       = 16
	demoSteps   = 2000
)

// DefaultDemoDir is where rise serve keeps the demo: the user's cache.
func DefaultDemoDir() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		dir = os.TempDir()
	}
	return filepath.Join(dir, "rise", DemoVersion)
}

// SetupDemo fills the server's workspace (whose Dir is the demo directory)
// with the built-in demo: the planted dump of rise synth's defaults, written
// on first use, and its TopK SAE, trained live by a job the first time and
// read back after. It returns the job that trains or analyses the SAE.
func (s *Server) SetupDemo(ctx context.Context) (*Job, error) {
	dir := s.ws.Dir
	dump := filepath.Join(dir, "dump")
	if _, err := os.Stat(filepath.Join(dump, "manifest.json")); err != nil {
		if _, err := synth.Generate(ctx, dump, synth.DefaultConfig(), true, nil); err != nil {
			return nil, err
		}
	}
	if _, err := s.ws.AddDataset(s.ctx, dump, DemoDataset); err != nil {
		return nil, err
	}
	saeDir := filepath.Join(dir, "saes", DemoSAE)
	if _, err := os.Stat(filepath.Join(saeDir, "cfg.json")); err == nil {
		if m, err := s.ws.addTrained(saeDir); err == nil {
			return s.StartAnalysis(m), nil
		}
		// A damaged SAE is trained again.
		os.RemoveAll(saeDir)
	}
	os.RemoveAll(saeDir) // an interrupted first run leaves a checkpoint only
	layer := s.ws.Datasets()[0].Dump.Layers[0].Number
	return s.StartTrain(TrainRequest{Kind: "train", Dataset: DemoDataset, Layer: &layer, Name: DemoSAE,
		Arch: "topk", Width: demoWidth, K: demoK, Steps: demoSteps, Seed: 1})
}
