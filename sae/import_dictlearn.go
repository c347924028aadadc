package sae

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/rise-interp/rise/activations"
)

// The files of a dictionary_learning SAE directory.
const (
	// DictLearnTorchFile is the checkpoint torch.save writes (ae.pt).
	DictLearnTorchFile = "ae.pt"
	// DictLearnSafetensorsFile holds the same tensors as safetensors.
	DictLearnSafetensorsFile = "ae.safetensors"
)

// dictLearnTrainer is what ImportDictionaryLearning reads of the trainer
// object of a dictionary_learning config.json.
type dictLearnTrainer struct {
	DictClass     string `json:"dict_class"`
	TrainerClass  string `json:"trainer_class"`
	ActivationDim *int   `json:"activation_dim"`
	DictSize      *int   `json:"dict_size"`
	K             *int   `json:"k"`
	Layer         *int   `json:"layer"`
	LMName        string `json:"lm_name"`
	SubmoduleName string `json:"submodule_name"`
}

// ImportDictionaryLearning reads a BatchTopK SAE saved by
// saprmarks/dictionary_learning (BatchTopKSAE in
// dictionary_learning/trainers/batch_top_k.py): a directory with ae.pt (a
// torch.save'd state dict) or ae.safetensors holding encoder.weight
// [d_sae, d_in], encoder.bias [d_sae], decoder.weight [d_in, d_sae], b_dec
// [d_in], the scalar threshold and k, and a config.json whose "trainer"
// object names the class (dict_class BatchTopKSAE), activation_dim,
// dict_size, k, layer and lm_name. path may also name the weights file.
//
// At inference dictionary_learning encodes with its learned global
// threshold, f = ReLU(W_enc (x - b_dec) + b_enc) · [· > threshold], which
// is a JumpReLU with every latent's threshold equal to it, applied to
// x - b_dec; the result is a BatchTopK SAE (a JumpReLU at inference) with
// ApplyBDecToInput true. A threshold below zero means the checkpoint was
// saved before training set it, and is refused.
func ImportDictionaryLearning(path string) (*SAE, error) {
	dir, weights := path, ""
	if fi, err := os.Stat(path); err == nil && !fi.IsDir() {
		dir, weights = filepath.Dir(path), path
	}
	fail := func(err error) error { return fmt.Errorf("import dictionary_learning SAE %s: %w", path, err) }
	if weights == "" {
		for _, name := range []string{DictLearnSafetensorsFile, DictLearnTorchFile} {
			if fileExists(filepath.Join(dir, name)) {
				weights = filepath.Join(dir, name)
				break
			}
		}
		if weights == "" {
			return nil, fail(fmt.Errorf("no weights: expected %s or %s in the directory", DictLearnTorchFile, DictLearnSafetensorsFile))
		}
	}

	var tr dictLearnTrainer
	cpath := filepath.Join(dir, "config.json")
	haveConfig := fileExists(cpath)
	if haveConfig {
		var cfg struct {
			Trainer *dictLearnTrainer `json:"trainer"`
		}
		if err := readConfig(cpath, "a dictionary_learning config object", &cfg); err != nil {
			return nil, fail(err)
		}
		if cfg.Trainer == nil {
			return nil, fail(fmt.Errorf("%s: field trainer is missing: expected the trainer's settings (dict_class, activation_dim, dict_size, k)", cpath))
		}
		tr = *cfg.Trainer
		if tr.DictClass != "" && tr.DictClass != "BatchTopKSAE" {
			return nil, fail(fmt.Errorf("%s: trainer.dict_class is %q: expected BatchTopKSAE (other dictionary classes are not imported)", cpath, tr.DictClass))
		}
	}

	var tensors map[string]namedTensor
	var err error
	if strings.HasSuffix(strings.ToLower(weights), ".safetensors") {
		tensors, err = readSafetensorsAll(weights)
	} else {
		tensors, err = readTorchStateDict(weights)
	}
	if err != nil {
		return nil, fail(err)
	}
	known := []string{"encoder.weight", "encoder.bias", "decoder.weight", "b_dec", "threshold", "k"}
	var names []string
	for name := range tensors {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if !slices.Contains(known, name) {
			return nil, fail(fmt.Errorf("%s: unexpected tensor %q: expected %s (a BatchTopKSAE state dict)", weights, name, strings.Join(known, ", ")))
		}
	}
	for _, name := range known[:5] {
		if _, ok := tensors[name]; !ok {
			return nil, fail(fmt.Errorf("%s: tensor %s is missing: expected %s", weights, name, strings.Join(known[:5], ", ")))
		}
	}
	enc := tensors["encoder.weight"]
	if len(enc.shape) != 2 || enc.shape[0] == 0 || enc.shape[1] == 0 {
		return nil, fail(fmt.Errorf("%s: encoder.weight has shape %s, expected [d_sae, d_in]", weights, shapeList(enc.shape)))
	}
	dsae, din := enc.shape[0], enc.shape[1]
	want := map[string][]int{"encoder.bias": {dsae}, "decoder.weight": {din, dsae}, "b_dec": {din}}
	for _, name := range []string{"encoder.bias", "decoder.weight", "b_dec"} {
		if got := tensors[name].shape; !slices.Equal(got, want[name]) {
			return nil, fail(fmt.Errorf("%s: %s has shape %s, expected %s from encoder.weight %s", weights, name, shapeList(got), shapeList(want[name]), shapeList(enc.shape)))
		}
	}
	scalar := func(name string) (float32, bool, error) {
		t, ok := tensors[name]
		if !ok {
			return 0, false, nil
		}
		if len(t.data) != 1 {
			return 0, true, fmt.Errorf("%s: %s has shape %s, expected a scalar", weights, name, shapeList(t.shape))
		}
		return t.data[0], true, nil
	}
	thr, _, err := scalar("threshold")
	if err != nil {
		return nil, fail(err)
	}
	switch {
	case math.IsNaN(float64(thr)) || math.IsInf(float64(thr), 0):
		return nil, fail(fmt.Errorf("%s: threshold is %v, expected a finite number", weights, thr))
	case thr < 0:
		return nil, fail(fmt.Errorf("%s: threshold is %v: expected the non-negative threshold dictionary_learning sets at the end of training (this checkpoint was saved before it was set)", weights, thr))
	}
	k := 0
	if kt, ok, err := scalar("k"); err != nil {
		return nil, fail(err)
	} else if ok {
		k = int(kt)
	}
	if haveConfig {
		for _, c := range []struct {
			field string
			v     *int
			want  int
		}{{"activation_dim", tr.ActivationDim, din}, {"dict_size", tr.DictSize, dsae}} {
			if c.v != nil && *c.v != c.want {
				return nil, fail(fmt.Errorf("%s: trainer.%s is %d, but %s holds %d", cpath, c.field, *c.v, weights, c.want))
			}
		}
		if tr.K != nil {
			if k != 0 && *tr.K != k {
				return nil, fail(fmt.Errorf("%s: trainer.k is %d, but %s holds k %d", cpath, *tr.K, weights, k))
			}
			k = *tr.K
		}
	}
	if k <= 0 || k > dsae {
		return nil, fail(fmt.Errorf("%s: k is %d, expected a number of active latents from 1 to d_sae %d (in the tensor k or config.json's trainer.k)", weights, k, dsae))
	}

	s := &SAE{
		Arch: BatchTopK, DIn: din, DSae: dsae, K: k,
		WEnc: make([]float32, din*dsae), WDec: make([]float32, dsae*din),
		BEnc: tensors["encoder.bias"].data, BDec: tensors["b_dec"].data,
		Threshold:        make([]float32, dsae),
		ApplyBDecToInput: true, InputScale: 1, Normalization: activations.NormNone,
	}
	// encoder.weight [d_sae, d_in] and decoder.weight [d_in, d_sae] are
	// nn.Linear weights: W_enc and W_dec are their transposes.
	e, d := enc.data, tensors["decoder.weight"].data
	for j := range dsae {
		s.Threshold[j] = thr
		for i := range din {
			s.WEnc[i*dsae+j] = e[j*din+i]
			s.WDec[j*din+i] = d[i*dsae+j]
		}
	}
	s.Metadata.ModelName = tr.LMName
	if tr.Layer != nil {
		s.Metadata.HookLayer = *tr.Layer
	}
	s.Metadata.HookName = tr.SubmoduleName
	if err := s.Check(); err != nil {
		return nil, fail(fmt.Errorf("%s: %w", weights, err))
	}
	return s, nil
}
