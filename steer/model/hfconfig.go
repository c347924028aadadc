package model

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
)

// hfConfig is the part of a Hugging Face config.json the runtime reads.
type hfConfig struct {
	ModelType     string          `json:"model_type"`
	Architectures []string        `json:"architectures"`
	HiddenSize    int             `json:"hidden_size"`
	Intermediate  int             `json:"intermediate_size"`
	Layers        int             `json:"num_hidden_layers"`
	Heads         int             `json:"num_attention_heads"`
	KVHeads       int             `json:"num_key_value_heads"`
	HeadDim       int             `json:"head_dim"`
	Vocab         int             `json:"vocab_size"`
	MaxPositions  json.RawMessage `json:"max_position_embeddings"`
	RMSNormEps    float64         `json:"rms_norm_eps"`
	Tie           *bool           `json:"tie_word_embeddings"`
	AttentionBias *bool           `json:"attention_bias"`
	HiddenAct     string          `json:"hidden_act"`
	SlidingWindow bool            `json:"use_sliding_window"`
	LayerTypes    []string        `json:"layer_types"`
	MLPBias       bool            `json:"mlp_bias"`
	UseMrope      bool            `json:"use_mrope"`
	PretrainingTP int             `json:"pretraining_tp"`

	// RoPE: transformers 5 writes rope_parameters (with rope_theta and
	// rope_type inside); earlier versions write rope_theta and
	// rope_scaling at the top level. Phi-3 style configs put
	// original_max_position_embeddings at the top level too.
	RopeTheta      *float64        `json:"rope_theta"`
	RopeScaling    json.RawMessage `json:"rope_scaling"`
	RopeParameters json.RawMessage `json:"rope_parameters"`
	PartialRotary  *float64        `json:"partial_rotary_factor"`
	OrigMaxPos     *float64        `json:"original_max_position_embeddings"`
}

// maxPositionsLimit bounds max_position_embeddings. Nothing is allocated
// for the declared maximum (the key/value cache and the RoPE tables grow
// with the positions reached), so the bound only keeps position arithmetic
// far from overflow.
const maxPositionsLimit = 1 << 48

// parseHFConfig turns the bytes of a config.json (path, for messages) into
// a Config for the Llama, Qwen2 and Qwen3 architectures. Fields whose
// values this runtime does not implement are refused with an error that
// names them; absent fields take transformers' defaults.
func parseHFConfig(path string, b []byte) (Config, error) {
	var hc hfConfig
	if err := json.Unmarshal(b, &hc); err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	errf := func(format string, args ...any) error {
		return fmt.Errorf("%s: %s", path, fmt.Sprintf(format, args...))
	}
	c := Config{Dim: hc.HiddenSize, Hidden: hc.Intermediate, Layers: hc.Layers, Heads: hc.Heads, KVHeads: hc.KVHeads,
		HeadDim: hc.HeadDim, Vocab: hc.Vocab, NormEps: hc.RMSNormEps}
	bias := hc.AttentionBias != nil && *hc.AttentionBias
	switch hc.ModelType {
	case "llama":
		c.Arch = ArchLlama
	case "qwen2":
		// Qwen2's q, k and v projections always have biases.
		c.Arch, c.QKVBias = ArchQwen2, true
	case "qwen3":
		c.Arch, c.QKNorm = ArchQwen3, true
	default:
		return Config{}, errf("model_type %q (architectures %v): expected llama, qwen2 or qwen3, the architectures this runtime implements",
			hc.ModelType, hc.Architectures)
	}
	if bias && c.Arch != ArchQwen2 {
		// Llama and Qwen3 give the output projection a bias too.
		return Config{}, errf("attention_bias is true: this runtime implements %s attention without biases", hc.ModelType)
	}
	c.Tied = hc.Tie != nil && *hc.Tie
	if c.KVHeads == 0 {
		c.KVHeads = c.Heads
	}
	if c.HeadDim == 0 && c.Heads > 0 {
		c.HeadDim = c.Dim / c.Heads
	}
	if c.NormEps == 0 {
		c.NormEps = 1e-6
	}
	c.MaxSeq = 4096
	if len(hc.MaxPositions) > 0 && string(hc.MaxPositions) != "null" {
		n, err := strconv.ParseFloat(string(hc.MaxPositions), 64)
		if err != nil || n != math.Trunc(n) || n < 1 || n > maxPositionsLimit {
			return Config{}, errf("max_position_embeddings: expected a whole number from 1 to 2^48, found %s", hc.MaxPositions)
		}
		c.MaxSeq = int(n)
	}
	switch {
	case hc.HiddenAct != "" && hc.HiddenAct != "silu":
		return Config{}, errf("hidden_act %q: expected silu (SwiGLU)", hc.HiddenAct)
	case hc.SlidingWindow:
		return Config{}, errf("use_sliding_window is true: this runtime implements full attention only")
	case hc.MLPBias:
		return Config{}, errf("mlp_bias is true: this runtime implements bias-free MLPs only")
	case hc.UseMrope:
		return Config{}, errf("use_mrope is true: this runtime implements one-dimensional RoPE only")
	case hc.PretrainingTP > 1:
		return Config{}, errf("pretraining_tp %d: expected 1", hc.PretrainingTP)
	case hc.PartialRotary != nil && *hc.PartialRotary != 1:
		return Config{}, errf("partial_rotary_factor %g: this runtime rotates whole heads (1)", *hc.PartialRotary)
	}
	for i, t := range hc.LayerTypes {
		if t != "full_attention" {
			return Config{}, errf("layer_types[%d] %q: this runtime implements full_attention only", i, t)
		}
	}
	theta, rope, err := hfRope(hc, c.MaxSeq)
	if err != nil {
		return Config{}, errf("%v", err)
	}
	c.Theta, c.Rope = theta, rope
	if err := c.Validate(); err != nil {
		return Config{}, errf("%v", err)
	}
	return c, nil
}

// ropeKeys are the keys of rope_parameters / rope_scaling this runtime
// reads, by rope_type, as transformers' validation lists them.
var ropeKeys = map[string][]string{
	"default": {},
	"linear":  {"factor"},
	"llama3":  {"factor", "original_max_position_embeddings", "low_freq_factor", "high_freq_factor"},
	"yarn":    {"factor", "original_max_position_embeddings", "attention_factor", "beta_fast", "beta_slow", "mscale", "mscale_all_dim", "truncate"},
}

// hfRope reads RoPE's base and scaling as transformers 5 standardises
// them: rope_parameters (or, from older configs, rope_scaling) holds
// rope_type ("type" in old files) and its parameters, and rope_theta
// comes from it or else from the top level (default 10000). Both dicts
// may be present only when they agree; a parameter this runtime does not
// read is refused rather than ignored.
func hfRope(hc hfConfig, maxPos int) (float64, RopeScaling, error) {
	present := func(raw json.RawMessage) bool {
		t := string(bytes.TrimSpace(raw))
		return t != "" && t != "null" && t != "{}"
	}
	field, raw := "rope_parameters", hc.RopeParameters
	if present(hc.RopeScaling) {
		if present(hc.RopeParameters) {
			a, errA := decodeRopeDict("rope_scaling", hc.RopeScaling)
			b, errB := decodeRopeDict("rope_parameters", hc.RopeParameters)
			if errA != nil {
				return 0, RopeScaling{}, errA
			}
			if errB != nil {
				return 0, RopeScaling{}, errB
			}
			for k, v := range a {
				if w, ok := b[k]; ok && !sameJSONValue(v, w) {
					return 0, RopeScaling{}, fmt.Errorf("rope_scaling.%s %s and rope_parameters.%s %s disagree: expected one RoPE description", k, v, k, w)
				}
			}
		} else {
			field, raw = "rope_scaling", hc.RopeScaling
		}
	}
	var d map[string]string
	if present(raw) {
		var err error
		if d, err = decodeRopeDict(field, raw); err != nil {
			return 0, RopeScaling{}, err
		}
	}
	num := func(key string) (float64, bool, error) {
		s, ok := d[key]
		if !ok || s == "null" {
			return 0, false, nil
		}
		x, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsInf(x, 0) {
			return 0, false, fmt.Errorf("%s.%s: expected a number, found %s", field, key, s)
		}
		return x, true, nil
	}

	theta := 10000.0
	if hc.RopeTheta != nil {
		theta = *hc.RopeTheta
	}
	if t, ok, err := num("rope_theta"); err != nil {
		return 0, RopeScaling{}, err
	} else if ok {
		if hc.RopeTheta != nil && *hc.RopeTheta != t {
			return 0, RopeScaling{}, fmt.Errorf("%s.rope_theta %g and rope_theta %g disagree: expected one RoPE base", field, t, *hc.RopeTheta)
		}
		theta = t
	}
	if p, ok, err := num("partial_rotary_factor"); err != nil {
		return 0, RopeScaling{}, err
	} else if ok && p != 1 {
		return 0, RopeScaling{}, fmt.Errorf("%s.partial_rotary_factor %g: this runtime rotates whole heads (1)", field, p)
	}

	typ := "default"
	for _, k := range []string{"type", "rope_type"} {
		if s, ok := d[k]; ok && s != "null" {
			var name string
			if err := json.Unmarshal([]byte(s), &name); err != nil {
				return 0, RopeScaling{}, fmt.Errorf("%s.%s: expected a string, found %s", field, k, s)
			}
			if k == "rope_type" && typ != "default" && name != typ {
				return 0, RopeScaling{}, fmt.Errorf("%s: type %q and rope_type %q disagree", field, typ, name)
			}
			typ = name
		}
	}
	known, ok := ropeKeys[typ]
	if !ok {
		return 0, RopeScaling{}, fmt.Errorf("%s.rope_type %q: expected default, linear, llama3 or yarn, the RoPE types this runtime implements", field, typ)
	}
	var unknown []string
	for k := range d {
		switch k {
		case "type", "rope_type", "rope_theta", "partial_rotary_factor":
			continue
		}
		if d[k] == "null" {
			continue
		}
		found := false
		for _, kk := range known {
			found = found || k == kk
		}
		if !found {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return 0, RopeScaling{}, fmt.Errorf("%s.%s %s: not a parameter of rope_type %q that this runtime implements", field, unknown[0], d[unknown[0]], typ)
	}
	r := RopeScaling{}
	if typ == "default" {
		return theta, r, nil
	}
	r.Type = typ
	get := func(key string, dst *float64) error {
		x, ok, err := num(key)
		if ok {
			*dst = x
		}
		return err
	}
	var orig float64
	for _, p := range []struct {
		key string
		dst *float64
	}{{"factor", &r.Factor}, {"original_max_position_embeddings", &orig}, {"low_freq_factor", &r.LowFreqFactor},
		{"high_freq_factor", &r.HighFreqFactor}, {"beta_fast", &r.BetaFast}, {"beta_slow", &r.BetaSlow},
		{"attention_factor", &r.AttentionFactor}, {"mscale", &r.Mscale}, {"mscale_all_dim", &r.MscaleAllDim}} {
		if err := get(p.key, p.dst); err != nil {
			return 0, RopeScaling{}, err
		}
	}
	if s, ok := d["truncate"]; ok && s != "null" {
		switch s {
		case "true":
		case "false":
			r.NoTruncate = true
		default:
			return 0, RopeScaling{}, fmt.Errorf("%s.truncate: expected true or false, found %s", field, s)
		}
	}
	if s, ok := d["factor"]; !ok || s == "null" {
		return 0, RopeScaling{}, fmt.Errorf("%s: rope_type %s needs a factor", field, typ)
	}
	if typ == RopeLinear {
		return theta, r, nil
	}
	// transformers: a top-level original_max_position_embeddings wins;
	// without either, max_position_embeddings is the training context.
	if hc.OrigMaxPos != nil {
		orig = *hc.OrigMaxPos
	} else if _, ok := d["original_max_position_embeddings"]; !ok {
		orig = float64(maxPos)
	}
	if orig != math.Trunc(orig) || orig < 1 || orig > maxPositionsLimit {
		return 0, RopeScaling{}, fmt.Errorf("%s.original_max_position_embeddings: expected a whole number from 1 to 2^48, found %g", field, orig)
	}
	r.OriginalMaxPos = int(orig)
	if typ == RopeLlama3 {
		for _, k := range []string{"low_freq_factor", "high_freq_factor"} {
			if s, ok := d[k]; !ok || s == "null" {
				return 0, RopeScaling{}, fmt.Errorf("%s: rope_type llama3 needs %s", field, k)
			}
		}
	}
	return theta, r, nil
}

// decodeRopeDict reads a rope_parameters or rope_scaling object into its
// keys and their raw JSON values.
func decodeRopeDict(field string, raw json.RawMessage) (map[string]string, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("%s: expected an object of RoPE parameters, found %s", field, clipJSON(raw))
	}
	d := make(map[string]string, len(m))
	for k, v := range m {
		d[k] = string(bytes.TrimSpace(v))
	}
	return d, nil
}

// sameJSONValue compares two raw JSON values, numbers by value (8 and 8.0
// are the same factor).
func sameJSONValue(a, b string) bool {
	x, errA := strconv.ParseFloat(a, 64)
	y, errB := strconv.ParseFloat(b, 64)
	if errA == nil && errB == nil {
		return x == y
	}
	return a == b
}

// clipJSON shortens raw JSON for a message.
func clipJSON(raw json.RawMessage) string {
	s := string(bytes.TrimSpace(raw))
	if len(s) > 80 {
		return s[:77] + "..."
	}
	return s
}
