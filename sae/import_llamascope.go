package sae

import (
	"fmt"
	"math"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/rise-interp/rise/activations"
)

// LlamaScopeConfigFile is the configuration of an OpenMOSS lm-saes SAE
// (Llama Scope, Llama-Scope-R1-Distill); its tensors sit beside it in
// sae_weights.safetensors.
const LlamaScopeConfigFile = "config.json"

// regexpBlocks finds the layer of a TransformerLens hook name
// ("blocks.15.hook_resid_post").
var regexpBlocks = regexp.MustCompile(`blocks\.(\d+)\.`)

// llamaScopeConfig is what ImportLlamaScope reads of an lm-saes config.json.
type llamaScopeConfig struct {
	DModel                       *int               `json:"d_model"`
	DSae                         int                `json:"d_sae"`
	ExpansionFactor              int                `json:"expansion_factor"`
	ActFn                        string             `json:"act_fn"`
	NormActivation               string             `json:"norm_activation"`
	DatasetAverageActivationNorm map[string]float64 `json:"dataset_average_activation_norm"`
	UseDecoderBias               *bool              `json:"use_decoder_bias"`
	ApplyDecoderBiasToPreEncoder bool               `json:"apply_decoder_bias_to_pre_encoder"`
	SparsityIncludeDecoderNorm   bool               `json:"sparsity_include_decoder_norm"`
	UseGLUEncoder                bool               `json:"use_glu_encoder"`
	HookPointIn                  string             `json:"hook_point_in"`
	HookPointOut                 string             `json:"hook_point_out"`
	ModelName                    string             `json:"model_name"`
}

// isLlamaScope reports whether dir holds an lm-saes SAE: config.json with
// hook_point_in beside sae_weights.safetensors, and no SAELens cfg.json.
func isLlamaScope(dir string) bool {
	if fileExists(filepath.Join(dir, SAELensConfigFile)) || !fileExists(filepath.Join(dir, SAELensWeightsFile)) {
		return false
	}
	var probe struct {
		HookPointIn *string `json:"hook_point_in"`
	}
	return readConfig(filepath.Join(dir, LlamaScopeConfigFile), "an lm-saes config object", &probe) == nil && probe.HookPointIn != nil
}

// ImportLlamaScope reads a JumpReLU SAE in the layout of OpenMOSS's lm-saes
// as published for Llama Scope R1 Distill (fnlp/Llama-Scope-R1-Distill,
// folders such as 400M-Slimpajama-400M-OpenR1-Math-220k/L15R): config.json
// (d_model, expansion_factor or d_sae, act_fn "jumprelu", norm_activation,
// dataset_average_activation_norm {in, out}, sparsity_include_decoder_norm,
// apply_decoder_bias_to_pre_encoder, hook_point_in and hook_point_out) and
// sae_weights.safetensors with encoder.weight [d_sae, d_in], encoder.bias
// [d_sae], decoder.weight [d_in, d_sae], decoder.bias [d_in] and
// log_jumprelu_threshold [d_sae]. The layout is the one SAELens's
// llama_scope_r1_distill loader reads (sae_lens/loading/pretrained_sae_loaders.py).
//
// lm-saes encodes (SparseAutoEncoder.encode in lm_saes/sae.py)
//
//	x'    = x · sqrt(d_model) / norm_in               (norm_activation "dataset-wise")
//	h     = W_enc (x' - b_dec·[apply_decoder_bias_to_pre_encoder]) + b_enc
//	score = h · ||W_dec[:, j]||                       (sparsity_include_decoder_norm)
//	f     = h where score > exp(log_jumprelu_threshold)
//
// and decodes x_hat' = W_dec f + b_dec in the scaled space. The import
// turns the score test into a per-latent threshold on h (threshold_j =
// exp(log θ_j) / ||W_dec[:, j]||; a latent with a zero decoder column
// never fires) and folds the dataset-wise scale into the weights, so the
// SAE takes and returns raw activations. SAELens's loader drops the
// decoder-norm factor; the two agree when the decoder columns have unit
// norm. Transcoders (hook_point_in ≠ hook_point_out), token- or batch-wise
// normalisation, and GLU encoders are refused.
func ImportLlamaScope(path string) (*SAE, error) {
	var cfg llamaScopeConfig
	dir, cpath, fail, err := importConfig(path, "Llama Scope", LlamaScopeConfigFile, "an lm-saes config object", &cfg)
	if err != nil {
		return nil, err
	}
	wpath := filepath.Join(dir, SAELensWeightsFile)
	switch {
	case cfg.DModel == nil || *cfg.DModel <= 0:
		return nil, fail(fmt.Errorf("%s: field d_model is missing or not positive: expected the SAE's input width", cpath))
	case cfg.ActFn != "jumprelu":
		return nil, fail(fmt.Errorf("%s: act_fn is %q: expected jumprelu", cpath, cfg.ActFn))
	case cfg.UseGLUEncoder:
		return nil, fail(fmt.Errorf("%s: use_glu_encoder is true: a gated encoder is not rise's forward pass", cpath))
	case cfg.HookPointOut != "" && cfg.HookPointOut != cfg.HookPointIn:
		return nil, fail(fmt.Errorf("%s: hook_point_in %q differs from hook_point_out %q: a transcoder predicts another site and is not an autoencoder rise can run", cpath, cfg.HookPointIn, cfg.HookPointOut))
	case cfg.DSae < 0 || cfg.ExpansionFactor < 0 || cfg.ExpansionFactor > math.MaxInt32 / *cfg.DModel:
		return nil, fail(fmt.Errorf("%s: d_sae %d and expansion_factor %d: expected non-negative widths", cpath, cfg.DSae, cfg.ExpansionFactor))
	}
	din := *cfg.DModel
	scale := 1.0
	switch cfg.NormActivation {
	case "dataset-wise":
		in, ok := cfg.DatasetAverageActivationNorm["in"]
		if !ok || !(in > 0) || math.IsInf(in, 0) {
			return nil, fail(fmt.Errorf("%s: norm_activation is dataset-wise but dataset_average_activation_norm.in is missing or not a positive number", cpath))
		}
		if out, ok := cfg.DatasetAverageActivationNorm["out"]; ok && out != in {
			return nil, fail(fmt.Errorf("%s: dataset_average_activation_norm in %v and out %v differ: expected an autoencoder whose input and output share one scale", cpath, in, out))
		}
		scale = math.Sqrt(float64(din)) / in
	case "inference", "", "none":
	default:
		return nil, fail(fmt.Errorf("%s: norm_activation %q scales each input by its own norm, which is not a linear map rise can fold into the weights: expected dataset-wise or inference", cpath, cfg.NormActivation))
	}

	tensors, err := readSafetensorsAll(wpath)
	if err != nil {
		return nil, fail(err)
	}
	known := []string{"encoder.weight", "encoder.bias", "decoder.weight", "decoder.bias", "log_jumprelu_threshold"}
	for name := range tensors {
		if !slices.Contains(known, name) {
			return nil, fail(fmt.Errorf("%s: unexpected tensor %q: expected %s", wpath, name, strings.Join(known, ", ")))
		}
	}
	useBias := cfg.UseDecoderBias == nil || *cfg.UseDecoderBias
	for _, name := range known {
		if _, ok := tensors[name]; !ok && (name != "decoder.bias" || useBias) {
			return nil, fail(fmt.Errorf("%s: tensor %s is missing: expected %s", wpath, name, strings.Join(known, ", ")))
		}
	}
	enc := tensors["encoder.weight"]
	if len(enc.shape) != 2 || enc.shape[1] != din || enc.shape[0] == 0 {
		return nil, fail(fmt.Errorf("%s: encoder.weight has shape %s, expected [d_sae, d_model %d] from %s", wpath, shapeList(enc.shape), din, cpath))
	}
	dsae := enc.shape[0]
	if want := max(cfg.DSae, din*cfg.ExpansionFactor); want != 0 && want != dsae {
		return nil, fail(fmt.Errorf("%s: encoder.weight has %d latents, %s says d_sae %d", wpath, dsae, cpath, want))
	}
	bdec, hasBias := tensors["decoder.bias"]
	if !hasBias {
		bdec = namedTensor{shape: []int{din}, data: make([]float32, din)}
	}
	want := map[string][]int{"encoder.bias": {dsae}, "decoder.weight": {din, dsae}, "decoder.bias": {din}, "log_jumprelu_threshold": {dsae}}
	got := map[string]namedTensor{"encoder.bias": tensors["encoder.bias"], "decoder.weight": tensors["decoder.weight"], "decoder.bias": bdec, "log_jumprelu_threshold": tensors["log_jumprelu_threshold"]}
	for _, name := range []string{"encoder.bias", "decoder.weight", "decoder.bias", "log_jumprelu_threshold"} {
		if !slices.Equal(got[name].shape, want[name]) {
			return nil, fail(fmt.Errorf("%s: %s has shape %s, expected %s from encoder.weight %s", wpath, name, shapeList(got[name].shape), shapeList(want[name]), shapeList(enc.shape)))
		}
	}

	s := &SAE{
		Arch: JumpReLU, DIn: din, DSae: dsae,
		WEnc: make([]float32, din*dsae), WDec: make([]float32, dsae*din),
		BEnc: got["encoder.bias"].data, BDec: bdec.data, Threshold: make([]float32, dsae),
		ApplyBDecToInput: cfg.ApplyDecoderBiasToPreEncoder && useBias,
		InputScale:       float32(scale), Normalization: activations.NormNone,
	}
	e, d, logThr := enc.data, got["decoder.weight"].data, got["log_jumprelu_threshold"].data
	for j := range dsae {
		var sq float64
		for i := range din {
			s.WEnc[i*dsae+j] = e[j*din+i]
			v := d[i*dsae+j]
			s.WDec[j*din+i] = v
			sq += float64(v) * float64(v)
		}
		thr := math.Exp(float64(logThr[j]))
		if cfg.SparsityIncludeDecoderNorm {
			if sq == 0 {
				thr = math.MaxFloat32 // the score is 0 and never passes a positive threshold
			} else {
				thr /= math.Sqrt(sq)
			}
		}
		if math.IsNaN(thr) || thr > math.MaxFloat32 {
			thr = math.MaxFloat32
		}
		s.Threshold[j] = float32(thr)
	}
	// The scale multiplies x before any b_dec subtraction: FoldInputScale
	// folds it into W_enc (and b_dec), and the decoder's output back to
	// the raw scale.
	s.FoldInputScale()
	s.Metadata.ModelName = cfg.ModelName
	s.Metadata.HookName = cfg.HookPointIn
	if m := regexpBlocks.FindStringSubmatch(cfg.HookPointIn); m != nil {
		if l, err := strconv.Atoi(m[1]); err == nil {
			s.Metadata.HookLayer = l
		}
	}
	if err := s.Check(); err != nil {
		return nil, fail(fmt.Errorf("%s: %w", wpath, err))
	}
	return s, nil
}
