package web

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/rise-interp/rise/activations/reason"
	"github.com/rise-interp/rise/internal/files"
	"github.com/rise-interp/rise/steer"
)

// The tiny reasoning model's files in a checkout (testdata/tinyreason).
const (
	TinyModelFile     = "testdata/tinyreason/model.bin"
	TinyTokenizerFile = "testdata/tinyreason/tok.bin"
)

// The model demo: traces of held-apart problems run through the model,
// recorded after three blocks, one SAE per layer.
const (
	TinyDataset = "tinyreason"
	tinySeed    = 7 // the training traces used seed 1
	tinyWidth   = 512
	tinyK       = 8
	// Without resampling most of the 512 latents die on the model's
	// 15,000 step states (59-78% by layer). Resampled every 50 steps in
	// the first half of 3,000 steps at the default rate (2.8e-3 at this
	// width), 1% (block 3), 7% (block 2) and 19% (block 1) die; block 1's
	// states hold 90% of their variance in 2 of 128 dimensions, and there
	// the dead share swings from 12% to 57% at rates 6e-4 to 3e-3: once
	// resampling stops, latents die in bulk. At 3e-4 for 6,000 steps at
	// most 1% die on any block over seeds 1 to 3, with a fraction of
	// variance unexplained of 0.009-0.010 on block 1 (rise eval over the
	// whole dump). Block 3, the best layer, keeps the default rate: at
	// 3e-4 its behaviour columns cluster half as well (silhouette 0.25
	// against 0.48, "other" included) and explain less of its states
	// (0.020 against 0.014).
	tinySlowLR   = 3e-4
	tinyResample = 50
)

// The model demo's size: traces recorded and SAE training steps (tests
// make them smaller).
var (
	tinyTraces   = 3000
	tinySAESteps = 3000
)

// TinyLayers are the blocks whose output the model demo records.
var TinyLayers = []int{1, 2, 3}

// FindTinyModel returns the tiny reasoning model's files when the working
// directory is a checkout that has them.
func FindTinyModel() (model, tokenizer string, ok bool) {
	for _, p := range []string{TinyModelFile, TinyTokenizerFile} {
		if st, err := os.Stat(p); err != nil || !st.Mode().IsRegular() {
			return "", "", false
		}
	}
	return TinyModelFile, TinyTokenizerFile, true
}

// modelDemoRecipe names the model demo's recipe (the traces, the SAEs'
// settings, how they are trained) in its cache's name: a change to any of
// them must not read back SAEs the old recipe made. 2: 3,000 steps, and
// resampling draws each row once; 3: block 1 at rate 3e-4 for twice as
// many steps.
const modelDemoRecipe = "r3"

// ModelDemoDir names the model demo's cache by the model's contents and the
// demo's recipe, so a retrained model or a new recipe gets a fresh demo.
func ModelDemoDir(base, modelPath string) (string, error) {
	f, _, err := files.OpenRegular(modelPath)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return filepath.Join(base, "model-"+hex.EncodeToString(h.Sum(nil))[:12]+"-"+modelDemoRecipe), nil
}

// SetupModelDemo fills the workspace with the RISE loop on the server's
// model: synthetic reasoning traces (rise traces) run through the model and
// recorded at the step delimiters after TinyLayers — written once, with
// progress — then one TopK SAE per layer, trained live by jobs the first
// time and read back after, each followed by its atlas.
func (s *Server) SetupModelDemo(ctx context.Context, progress func(done, total int)) error {
	b := s.cfg.Backend
	if b == nil {
		return fmt.Errorf("the model demo needs a model")
	}
	dir := s.ws.Dir
	dump := filepath.Join(dir, "dump")
	if _, err := os.Stat(filepath.Join(dump, "manifest.json")); err != nil {
		trs, err := reason.Traces(reason.Config{N: tinyTraces, Seed: tinySeed})
		if err != nil {
			return err
		}
		if _, err := b.Capture(ctx, trs, dump, steer.CaptureOptions{Layers: TinyLayers, Overwrite: true, Progress: progress}); err != nil {
			return err
		}
	}
	ds, err := s.ws.AddDataset(s.ctx, dump, TinyDataset)
	if err != nil {
		return err
	}
	// A step's state is read where the model is about to write the next
	// step: tied to the next step's labels, the tiny model's reflection
	// columns are the ones that make it reflect when added at the step
	// boundaries (tied to their own step's, they mark a reflection just
	// written, after which the model rarely reflects again).
	ds.NextStep = true
	for _, l := range TinyLayers {
		name := fmt.Sprintf("%s-l%d", TinyDataset, l)
		saeDir := filepath.Join(dir, "saes", name)
		if _, err := os.Stat(filepath.Join(saeDir, "cfg.json")); err == nil {
			if md, err := s.ws.addTrained(saeDir); err == nil && md.Dataset == ds && md.Layer.Number == l {
				s.StartAnalysis(md)
				continue
			}
		}
		os.RemoveAll(saeDir)
		layer, steps, lr := l, tinySAESteps, 0.0
		if l == 1 {
			steps, lr = 2*tinySAESteps, tinySlowLR
		}
		if _, err := s.StartTrain(TrainRequest{Kind: "train", Dataset: TinyDataset, Layer: &layer, Name: name,
			Arch: "topk", Width: tinyWidth, K: tinyK, Steps: steps, Batch: 256, Seed: 1, Resample: tinyResample, LR: lr}); err != nil {
			return err
		}
	}
	return nil
}
