package sae

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/rise-interp/rise/activations"
	"github.com/rise-interp/rise/internal/atomicfile"
	"github.com/rise-interp/rise/internal/files"
	"github.com/rise-interp/rise/internal/memory"
	"github.com/rise-interp/rise/internal/safetensors"
)

// The files of a SAELens SAE directory.
const (
	// SAELensConfigFile holds the configuration (cfg.json).
	SAELensConfigFile = "cfg.json"
	// SAELensWeightsFile holds the tensors (sae_weights.safetensors).
	SAELensWeightsFile = "sae_weights.safetensors"
)

// saelensFormatVersion is the SAELens version whose cfg.json layout Save
// follows. SAELens reads a cfg.json without metadata.sae_lens_version (or
// with one below 6.0.0) as a pre-6 file and migrates it, moving metadata
// from the top level; stating the layout keeps it read as written.
const saelensFormatVersion = "6.0.0"

// SaveOptions configure Save.
type SaveOptions struct {
	// DType is the tensors' type on disk: "float32" (the default),
	// "float16" or "bfloat16"; the safetensors names F32, F16 and BF16 are
	// accepted too.
	DType string
	// Extra entries for cfg.json's metadata object, such as the training
	// configuration and final metrics. They must not reuse the names Save
	// writes itself (model_name, hook_name, ..., rise_*).
	Extra map[string]any
}

// SAELensConfig is what Load understands of a SAELens cfg.json, after
// folding the older layouts (metadata keys at the top level, hook_point,
// activation_fn_str "topk" with activation_fn_kwargs.k) into one shape.
type SAELensConfig struct {
	Architecture         string // as written: standard, topk, jumprelu, ...
	DIn                  int
	DSae                 int
	DType                string // torch name, e.g. "float32"
	K                    int    // topk only
	ApplyBDecToInput     bool
	NormalizeActivations string // "none", "expected_average_only_in", ...
	RescaleByDecoderNorm bool   // topk: pre-activations scaled by ||W_dec[j]|| before selection
	ActivationFn         string // pre-6 cfgs: "relu", "topk", ...

	Metadata Metadata
	// Raw holds cfg.json's metadata object as written (for v6 files) or the
	// top-level keys SAELens treats as metadata (for older ones), including
	// any training configuration and metrics.
	Raw map[string]json.RawMessage
}

// reservedMetadata are the metadata keys Save writes itself.
var reservedMetadata = []string{
	"sae_lens_version", "model_name", "hook_name", "hook_layer", "dataset_path", "position",
	"rise_architecture", "rise_k", "rise_normalization", "rise_input_scale",
}

// Save writes s to dir as a SAELens v6 SAE: cfg.json and
// sae_weights.safetensors with W_enc [d_in, d_sae], W_dec [d_sae, d_in],
// b_enc [d_sae], b_dec [d_in] and, for jumprelu, threshold [d_sae]. It works
// on a copy: the input scale is folded into the weights, so the saved SAE
// takes raw activations (normalize_activations "none"; the original
// normalization and scale are recorded in metadata as rise_normalization and
// rise_input_scale), and BatchTopK is saved as jumprelu with its learned
// threshold. Each file is written atomically, cfg.json last, so a directory
// with a cfg.json always has weights that match it.
func Save(dir string, s *SAE, opts SaveOptions) error {
	fail := func(err error) error { return fmt.Errorf("save SAE to %s: %w", dir, err) }
	if s == nil {
		return fail(errors.New("no SAE given"))
	}
	if err := s.Check(); err != nil {
		return fail(err)
	}
	dtype, err := safetensors.ParseDType(opts.DType)
	if err != nil {
		return fail(err)
	}
	for k := range opts.Extra {
		if slices.Contains(reservedMetadata, k) {
			return fail(fmt.Errorf("SaveOptions.Extra key %q is one Save writes itself; choose another name", k))
		}
	}
	c := s.Clone()
	scale := c.InputScale
	if scale == 0 {
		scale = 1
	}
	if !(scale > 0) || math.IsInf(float64(scale), 0) {
		return fail(fmt.Errorf("input scale is %v, expected a positive finite number", scale))
	}
	c.FoldInputScale()
	arch := c.InferenceArch()
	if arch == JumpReLU && len(c.Threshold) != c.DSae {
		return fail(fmt.Errorf("%s SAE has %d thresholds, expected d_sae %d", s.Arch, len(c.Threshold), c.DSae))
	}
	if err := c.Check(); err != nil { // folding can overflow
		return fail(fmt.Errorf("after folding the input scale %v into the weights: %w", scale, err))
	}

	tensors := []safetensors.Tensor{
		{Name: "W_enc", Shape: []int{c.DIn, c.DSae}, Data: c.WEnc},
		{Name: "W_dec", Shape: []int{c.DSae, c.DIn}, Data: c.WDec},
		{Name: "b_enc", Shape: []int{c.DSae}, Data: c.BEnc},
		{Name: "b_dec", Shape: []int{c.DIn}, Data: c.BDec},
	}
	if arch == JumpReLU {
		tensors = append(tensors, safetensors.Tensor{Name: "threshold", Shape: []int{c.DSae}, Data: c.Threshold})
	}
	weights, err := safetensors.Encode(tensors, dtype, nil)
	if err != nil {
		return fail(err)
	}

	norm := s.Normalization
	if norm == "" {
		norm = activations.NormNone
	}
	meta := map[string]any{}
	for k, v := range opts.Extra {
		meta[k] = v
	}
	meta["sae_lens_version"] = saelensFormatVersion
	meta["model_name"] = s.Metadata.ModelName
	meta["hook_name"] = s.Metadata.HookName
	meta["hook_layer"] = s.Metadata.HookLayer
	meta["dataset_path"] = s.Metadata.Dataset
	if s.Metadata.Position != "" {
		meta["position"] = s.Metadata.Position
	}
	meta["rise_architecture"] = string(s.Arch)
	if s.Arch == BatchTopK {
		meta["rise_k"] = s.K
	}
	meta["rise_normalization"] = string(norm)
	meta["rise_input_scale"] = scale

	cfg := map[string]any{
		"architecture":          string(arch),
		"d_in":                  c.DIn,
		"d_sae":                 c.DSae,
		"dtype":                 safetensors.TorchName(dtype),
		"device":                "cpu",
		"apply_b_dec_to_input":  c.ApplyBDecToInput,
		"normalize_activations": string(activations.NormNone),
		"reshape_activations":   "none",
		"metadata":              meta,
	}
	if arch == TopK {
		cfg["k"] = c.K
		cfg["rescale_acts_by_decoder_norm"] = false
	}
	cfgJSON, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return fail(fmt.Errorf("encoding cfg.json (is every SaveOptions.Extra value JSON-encodable?): %w", err))
	}
	cfgJSON = append(cfgJSON, '\n')

	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fail(err)
	}
	if err := atomicfile.Write(filepath.Join(dir, SAELensWeightsFile), weights); err != nil {
		return fail(err)
	}
	if err := atomicfile.Write(filepath.Join(dir, SAELensConfigFile), cfgJSON); err != nil {
		return fail(err)
	}
	return nil
}

// ReadSAELensConfig reads dir/cfg.json of a SAELens SAE directory, in the v6
// layout or an older one.
func ReadSAELensConfig(dir string) (*SAELensConfig, error) {
	path := filepath.Join(dir, SAELensConfigFile)
	data, err := files.ReadRegular(path, maxConfigBytes, "a JSON object")
	if err != nil {
		return nil, fmt.Errorf("read SAELens config: %w", err)
	}
	cfg, err := parseSAELensConfig(data)
	if err != nil {
		return nil, fmt.Errorf("read SAELens config %s: %w", path, err)
	}
	return cfg, nil
}

// parseSAELensConfig decodes cfg.json.
func parseSAELensConfig(data []byte) (*SAELensConfig, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return nil, fmt.Errorf("malformed JSON: %v", err)
	}
	if top == nil {
		return nil, errors.New("expected a JSON object, found null")
	}
	cfg := &SAELensConfig{Architecture: "standard", DType: "float32", ApplyBDecToInput: true, NormalizeActivations: "none"}

	// Metadata: v6 nests it; older files keep the same keys at the top.
	var meta map[string]json.RawMessage
	if raw, ok := top["metadata"]; ok && !isJSONNull(raw) {
		if err := json.Unmarshal(raw, &meta); err != nil {
			return nil, fmt.Errorf("field metadata: expected an object: %v", err)
		}
	}
	cfg.Raw = map[string]json.RawMessage{}
	for k, v := range meta {
		cfg.Raw[k] = v
	}
	for _, k := range []string{"model_name", "hook_name", "hook_point", "hook_layer", "hook_point_layer",
		"dataset_path", "context_size", "prepend_bos", "hook_head_index", "model_class_name",
		"sae_lens_version", "sae_lens_training_version", "neuronpedia_id"} {
		if _, ok := cfg.Raw[k]; !ok {
			if v, ok := top[k]; ok {
				cfg.Raw[k] = v
			}
		}
	}
	lookup := func(names ...string) (json.RawMessage, string, bool) {
		for _, n := range names {
			if v, ok := cfg.Raw[n]; ok && !isJSONNull(v) {
				return v, "metadata." + n, true
			}
		}
		return nil, "", false
	}
	if v, field, ok := lookup("model_name"); ok {
		if err := json.Unmarshal(v, &cfg.Metadata.ModelName); err != nil {
			return nil, fmt.Errorf("field %s: expected a string: %v", field, err)
		}
	}
	if v, field, ok := lookup("hook_name", "hook_point"); ok {
		if err := json.Unmarshal(v, &cfg.Metadata.HookName); err != nil {
			return nil, fmt.Errorf("field %s: expected a string: %v", field, err)
		}
	}
	if v, field, ok := lookup("hook_layer", "hook_point_layer"); ok {
		if err := json.Unmarshal(v, &cfg.Metadata.HookLayer); err != nil {
			return nil, fmt.Errorf("field %s: expected an integer: %v", field, err)
		}
	} else if l, ok := layerFromHookName(cfg.Metadata.HookName); ok {
		cfg.Metadata.HookLayer = l
	}
	if v, field, ok := lookup("dataset_path"); ok {
		if err := json.Unmarshal(v, &cfg.Metadata.Dataset); err != nil {
			return nil, fmt.Errorf("field %s: expected a string: %v", field, err)
		}
	}
	if v, field, ok := lookup("position"); ok {
		if err := json.Unmarshal(v, &cfg.Metadata.Position); err != nil {
			return nil, fmt.Errorf("field %s: expected a string: %v", field, err)
		}
	}

	str := func(name string, dst *string) error {
		if v, ok := top[name]; ok && !isJSONNull(v) {
			if err := json.Unmarshal(v, dst); err != nil {
				return fmt.Errorf("field %s: expected a string, found %s", name, clip(v))
			}
		}
		return nil
	}
	integer := func(name string, dst *int) (bool, error) {
		v, ok := top[name]
		if !ok || isJSONNull(v) {
			return false, nil
		}
		var f float64
		if err := json.Unmarshal(v, &f); err != nil || f != math.Trunc(f) || math.Abs(f) > math.MaxInt32 {
			return true, fmt.Errorf("field %s: expected an integer, found %s", name, clip(v))
		}
		*dst = int(f)
		return true, nil
	}
	boolean := func(name string, dst *bool) error {
		if v, ok := top[name]; ok && !isJSONNull(v) {
			if err := json.Unmarshal(v, dst); err != nil {
				return fmt.Errorf("field %s: expected true or false, found %s", name, clip(v))
			}
		}
		return nil
	}

	if err := str("architecture", &cfg.Architecture); err != nil {
		return nil, err
	}
	if err := str("dtype", &cfg.DType); err != nil {
		return nil, err
	}
	for _, f := range []string{"activation_fn", "activation_fn_str"} {
		if err := str(f, &cfg.ActivationFn); err != nil {
			return nil, err
		}
		if cfg.ActivationFn != "" {
			break
		}
	}
	if ok, err := integer("d_in", &cfg.DIn); err != nil {
		return nil, err
	} else if !ok {
		return nil, errors.New("field d_in is missing: expected the SAE's input width")
	}
	if ok, err := integer("d_sae", &cfg.DSae); err != nil {
		return nil, err
	} else if !ok {
		return nil, errors.New("field d_sae is missing: expected the SAE's number of latents")
	}
	if cfg.DIn <= 0 || cfg.DSae <= 0 {
		return nil, fmt.Errorf("d_in %d and d_sae %d: expected positive numbers", cfg.DIn, cfg.DSae)
	}
	if err := boolean("apply_b_dec_to_input", &cfg.ApplyBDecToInput); err != nil {
		return nil, err
	}
	if err := boolean("rescale_acts_by_decoder_norm", &cfg.RescaleByDecoderNorm); err != nil {
		return nil, err
	}

	// normalize_activations: a string, or in old files a boolean (true is
	// expected_average_only_in) or null (none).
	if v, ok := top["normalize_activations"]; ok && !isJSONNull(v) {
		var b bool
		if json.Unmarshal(v, &b) == nil {
			if b {
				cfg.NormalizeActivations = string(activations.NormMeanNorm)
			}
		} else if err := json.Unmarshal(v, &cfg.NormalizeActivations); err != nil {
			return nil, fmt.Errorf("field normalize_activations: expected a string, found %s", clip(v))
		}
	}

	// k: v6 has it at the top level; older topk files in
	// activation_fn_kwargs.
	hasK, err := integer("k", &cfg.K)
	if err != nil {
		return nil, err
	}
	if !hasK {
		if v, ok := top["activation_fn_kwargs"]; ok && !isJSONNull(v) {
			var kw map[string]json.RawMessage
			if err := json.Unmarshal(v, &kw); err != nil {
				return nil, fmt.Errorf("field activation_fn_kwargs: expected an object: %v", err)
			}
			if kv, ok := kw["k"]; ok {
				var f float64
				if err := json.Unmarshal(kv, &f); err != nil || f != math.Trunc(f) || math.Abs(f) > math.MaxInt32 {
					return nil, fmt.Errorf("field activation_fn_kwargs.k: expected an integer, found %s", clip(kv))
				}
				cfg.K = int(f)
			}
		}
	}
	return cfg, nil
}

// inferenceArch maps the cfg's architecture to the forward pass rise runs,
// or explains why it cannot.
func (cfg *SAELensConfig) inferenceArch(hasThreshold bool) (Arch, error) {
	switch cfg.Architecture {
	case "standard", "relu", "":
		switch cfg.ActivationFn {
		case "", "relu":
			return Standard, nil
		case "topk":
			return TopK, nil
		}
		return "", fmt.Errorf("field activation_fn is %q: expected relu or topk (rise runs no other activation)", cfg.ActivationFn)
	case "topk":
		return TopK, nil
	case "jumprelu":
		return JumpReLU, nil
	case "batchtopk", "batch_topk":
		if hasThreshold {
			return JumpReLU, nil // BatchTopK infers as a JumpReLU with its learned threshold
		}
		return "", fmt.Errorf("architecture %q without a threshold tensor: expected a saved BatchTopK SAE to carry its learned threshold", cfg.Architecture)
	case "gated":
		return "", errors.New(`architecture "gated" is not supported: rise runs standard, topk and jumprelu SAEs (a gated SAE's separate gate path and r_mag scaling have no equivalent here)`)
	}
	return "", fmt.Errorf("unknown architecture %q: expected standard, topk, jumprelu or batchtopk", cfg.Architecture)
}

// Load reads a SAELens SAE directory (cfg.json + sae_weights.safetensors),
// written by Save or by SAELens itself, v6 or older: architectures standard,
// topk and jumprelu (gated is refused), tensors of dtype float32, float16 or
// bfloat16. The tensors' shapes must agree with cfg.json's d_in and d_sae,
// and the weights must be finite. Equivalent reparametrisations are folded
// in so that the SAE runs rise's forward pass with the same outputs as
// SAELens: a jumprelu log_threshold becomes threshold = exp(log_threshold);
// a finetuning scaling_factor is folded into W_dec; a topk SAE with
// rescale_acts_by_decoder_norm has the decoder-row norms folded into W_enc,
// b_enc and W_dec. A file whose activations were normalized with
// expected_average_only_in and no folded scale loads with Normalization
// NormMeanNorm and InputScale 1: it expects its inputs scaled by
// sqrt(d_in)/E||x||, which the caller must set as InputScale. Run-time
// normalizations (constant_norm_rescale, layer_norm) are refused.
func Load(dir string) (*SAE, error) {
	cfg, err := ReadSAELensConfig(dir)
	if err != nil {
		return nil, err
	}
	wpath := filepath.Join(dir, SAELensWeightsFile)
	st, err := safetensors.Open(wpath)
	if err != nil {
		return nil, fmt.Errorf("load SAE: %w", err)
	}
	defer st.Close()
	s, err := cfg.build(st, filepath.Join(dir, SAELensConfigFile), wpath)
	if err != nil {
		return nil, fmt.Errorf("load SAE: %w", err)
	}
	return s, nil
}

// build assembles the SAE from the config and the tensors of wpath.
func (cfg *SAELensConfig) build(st *safetensors.File, cpath, wpath string) (*SAE, error) {
	_, hasThr := st.Shape("threshold")
	_, hasLogThr := st.Shape("log_threshold")
	arch, err := cfg.inferenceArch(hasThr || hasLogThr)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cpath, err)
	}
	switch cfg.NormalizeActivations {
	case "", "none", string(activations.NormMeanNorm):
	case "constant_norm_rescale", "layer_norm":
		return nil, fmt.Errorf("%s: normalize_activations %q rescales every input row at run time, which rise does not do: expected none or expected_average_only_in", cpath, cfg.NormalizeActivations)
	default:
		return nil, fmt.Errorf("%s: unknown normalize_activations %q: expected none or expected_average_only_in", cpath, cfg.NormalizeActivations)
	}
	if arch == TopK && (cfg.K <= 0 || cfg.K > cfg.DSae) {
		return nil, fmt.Errorf("%s: topk SAE has k %d, expected a value between 1 and d_sae %d", cpath, cfg.K, cfg.DSae)
	}
	s := &SAE{
		Arch: arch, DIn: cfg.DIn, DSae: cfg.DSae, ApplyBDecToInput: cfg.ApplyBDecToInput,
		InputScale: 1, Normalization: activations.NormNone, Metadata: cfg.Metadata,
	}
	if arch == TopK {
		s.K = cfg.K
	}
	if cfg.NormalizeActivations == string(activations.NormMeanNorm) {
		s.Normalization = activations.NormMeanNorm
	}

	din, dsae := cfg.DIn, cfg.DSae
	want := map[string][]int{
		"W_enc": {din, dsae}, "W_dec": {dsae, din}, "b_enc": {dsae}, "b_dec": {din},
	}
	dims := map[string]string{
		"W_enc": fmt.Sprintf("[d_in %d, d_sae %d]", din, dsae), "W_dec": fmt.Sprintf("[d_sae %d, d_in %d]", dsae, din),
		"b_enc": fmt.Sprintf("[d_sae %d]", dsae), "b_dec": fmt.Sprintf("[d_in %d]", din),
		"threshold": fmt.Sprintf("[d_sae %d]", dsae), "log_threshold": fmt.Sprintf("[d_sae %d]", dsae),
		"scaling_factor": fmt.Sprintf("[d_sae %d]", dsae), "finetuning_scaling_factor": fmt.Sprintf("[d_sae %d]", dsae),
	}
	optional := map[string]bool{"scaling_factor": true, "finetuning_scaling_factor": true}
	if arch == JumpReLU {
		switch {
		case hasThr && hasLogThr:
			return nil, fmt.Errorf("%s: holds both threshold and log_threshold, expected one", wpath)
		case hasThr:
			want["threshold"] = []int{dsae}
		case hasLogThr:
			want["log_threshold"] = []int{dsae}
		default:
			return nil, fmt.Errorf("%s: jumprelu SAE has no threshold tensor, expected threshold %s", wpath, dims["threshold"])
		}
	}
	for name := range optional {
		if _, ok := st.Shape(name); ok {
			want[name] = []int{dsae}
		}
	}
	for _, name := range st.Names() {
		if _, ok := want[name]; !ok {
			return nil, fmt.Errorf("%s: unexpected tensor %q for a %s SAE: expected only %s", wpath, name, cfg.Architecture, strings.Join(slices.Sorted(maps.Keys(want)), ", "))
		}
	}
	// The shapes agree with cfg.json and the file holds their bytes (a
	// sparse file can); the float32 copies must fit in memory too.
	var floats uint64
	for name, shape := range want {
		n := uint64(1)
		for _, d := range shape {
			n = memory.Product(n, u64(d))
		}
		floats = memory.Sum(floats, n)
		if name == "log_threshold" {
			floats = memory.Sum(floats, n) // threshold = exp(log_threshold) is a second array
		}
	}
	if err := checkMemory(memory.Product(4, floats), fmt.Sprintf("%s: the tensors of an SAE with d_in %d and d_sae %d (from %s)", wpath, din, dsae, cpath)); err != nil {
		return nil, err
	}
	got := map[string][]float32{}
	order := []string{"W_enc", "W_dec", "b_enc", "b_dec", "threshold", "log_threshold", "scaling_factor", "finetuning_scaling_factor"}
	for _, name := range order {
		if _, ok := want[name]; !ok {
			continue
		}
		shape, ok := st.Shape(name)
		if !ok {
			return nil, fmt.Errorf("%s: tensor %s is missing, expected %s %s", wpath, name, name, dims[name])
		}
		if !slices.Equal(shape, want[name]) {
			return nil, fmt.Errorf("%s: %s has shape %v, expected %s from %s", wpath, name, shapeList(shape), dims[name], cpath)
		}
		t, err := st.Read(name)
		if err != nil {
			return nil, err
		}
		got[name] = t.Data
	}
	s.WEnc, s.WDec, s.BEnc, s.BDec = got["W_enc"], got["W_dec"], got["b_enc"], got["b_dec"]
	if arch == JumpReLU {
		if lt, ok := got["log_threshold"]; ok {
			s.Threshold = make([]float32, dsae)
			for j, v := range lt {
				s.Threshold[j] = float32(math.Exp(float64(v)))
			}
		} else {
			s.Threshold = got["threshold"]
		}
	}
	for _, name := range []string{"scaling_factor", "finetuning_scaling_factor"} {
		if sf, ok := got[name]; ok {
			// SAELens multiplies the latents by the factor before W_dec.
			for j, v := range sf {
				if v != 1 {
					row := s.WDec[j*din : (j+1)*din]
					for i := range row {
						row[i] *= v
					}
				}
			}
		}
	}
	if err := s.Check(); err != nil {
		return nil, fmt.Errorf("%s: %w", wpath, err)
	}
	if arch == TopK && cfg.RescaleByDecoderNorm {
		foldDecoderNormsTopK(s)
	}
	return s, nil
}

// foldDecoderNormsTopK turns a TopK SAE whose pre-activations are scaled by
// the decoder-row norms n_j (and whose latents are divided by them before
// decoding) into a plain TopK SAE with the same latents and reconstructions:
// W_enc[:, j] and b_enc[j] times n_j, W_dec[j] divided by n_j. A latent with
// a zero decoder row never contributes and keeps a zero encoder column.
func foldDecoderNormsTopK(s *SAE) {
	d, m := s.DIn, s.DSae
	for j := range m {
		row := s.WDec[j*d : (j+1)*d]
		var sq float64
		for _, v := range row {
			sq += float64(v) * float64(v)
		}
		n := float32(math.Sqrt(sq))
		for i := range d {
			s.WEnc[i*m+j] *= n
		}
		s.BEnc[j] *= n
		if n > 0 {
			for i := range row {
				row[i] /= n
			}
		}
	}
}

// layerFromHookName reads the block number of a TransformerLens hook name
// such as "blocks.12.hook_resid_post".
func layerFromHookName(hook string) (int, bool) {
	rest, ok := strings.CutPrefix(hook, "blocks.")
	if !ok {
		return 0, false
	}
	n := 0
	i := 0
	for ; i < len(rest) && rest[i] >= '0' && rest[i] <= '9' && i < 6; i++ {
		n = n*10 + int(rest[i]-'0')
	}
	if i == 0 {
		return 0, false
	}
	return n, true
}

func isJSONNull(raw json.RawMessage) bool {
	return string(bytes.TrimSpace(raw)) == "null"
}

// shapeList formats a shape as [a, b].
func shapeList(shape []int) string {
	parts := make([]string, len(shape))
	for i, d := range shape {
		parts[i] = fmt.Sprint(d)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// fileExists reports whether path names an existing regular file.
func fileExists(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular()
}

// notExist reports whether err says a file is missing.
func notExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }

// clip shortens a raw JSON value for an error message.
func clip(raw []byte) string {
	if len(raw) > 40 {
		return string(raw[:40]) + "..."
	}
	return string(raw)
}
