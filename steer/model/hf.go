package model

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/rise-interp/rise/internal/safetensors"
)

// hfConfig is the part of a Hugging Face config.json the runtime reads.
type hfConfig struct {
	ModelType      string          `json:"model_type"`
	Architectures  []string        `json:"architectures"`
	HiddenSize     int             `json:"hidden_size"`
	Intermediate   int             `json:"intermediate_size"`
	Layers         int             `json:"num_hidden_layers"`
	Heads          int             `json:"num_attention_heads"`
	KVHeads        int             `json:"num_key_value_heads"`
	HeadDim        int             `json:"head_dim"`
	Vocab          int             `json:"vocab_size"`
	MaxPositions   int             `json:"max_position_embeddings"`
	RMSNormEps     float64         `json:"rms_norm_eps"`
	RopeTheta      float64         `json:"rope_theta"`
	RopeScaling    json.RawMessage `json:"rope_scaling"`
	Tie            *bool           `json:"tie_word_embeddings"`
	AttentionBias  bool            `json:"attention_bias"`
	HiddenAct      string          `json:"hidden_act"`
	SlidingWindow  bool            `json:"use_sliding_window"`
	MLPBias        bool            `json:"mlp_bias"`
	TorchDType     string          `json:"torch_dtype"`
	PretrainingTP  int             `json:"pretraining_tp"`
	RopeParameters json.RawMessage `json:"rope_parameters"`
}

// LoadHF reads a Hugging Face model directory of the Llama or Qwen2
// architecture: config.json and the weights in *.safetensors (one file or
// shards; F32, F16 or BF16), held in float32.
func LoadHF(dir string) (*Model, error) {
	cpath := filepath.Join(dir, "config.json")
	b, err := os.ReadFile(cpath)
	if err != nil {
		return nil, err
	}
	var hc hfConfig
	if err := json.Unmarshal(b, &hc); err != nil {
		return nil, fmt.Errorf("%s: %w", cpath, err)
	}
	c := Config{Dim: hc.HiddenSize, Hidden: hc.Intermediate, Layers: hc.Layers, Heads: hc.Heads, KVHeads: hc.KVHeads,
		HeadDim: hc.HeadDim, Vocab: hc.Vocab, MaxSeq: hc.MaxPositions, NormEps: hc.RMSNormEps, Theta: hc.RopeTheta}
	switch hc.ModelType {
	case "llama":
		c.Arch, c.QKVBias = ArchLlama, hc.AttentionBias
		c.Tied = hc.Tie != nil && *hc.Tie
	case "qwen2":
		c.Arch, c.QKVBias = ArchQwen2, true
		c.Tied = hc.Tie != nil && *hc.Tie
	default:
		return nil, fmt.Errorf("%s: model_type %q (architectures %v): expected llama or qwen2, the architectures this runtime implements",
			cpath, hc.ModelType, hc.Architectures)
	}
	if c.KVHeads == 0 {
		c.KVHeads = c.Heads
	}
	if c.HeadDim == 0 && c.Heads > 0 {
		c.HeadDim = c.Dim / c.Heads
	}
	if c.Theta == 0 {
		c.Theta = 10000
	}
	if c.NormEps == 0 {
		c.NormEps = 1e-6
	}
	if c.MaxSeq == 0 {
		c.MaxSeq = 4096
	}
	switch {
	case len(hc.RopeScaling) > 0 && string(hc.RopeScaling) != "null":
		return nil, fmt.Errorf("%s: rope_scaling %s: this runtime implements plain RoPE only", cpath, hc.RopeScaling)
	case hc.HiddenAct != "" && hc.HiddenAct != "silu":
		return nil, fmt.Errorf("%s: hidden_act %q: expected silu (SwiGLU)", cpath, hc.HiddenAct)
	case hc.SlidingWindow:
		return nil, fmt.Errorf("%s: use_sliding_window is true: this runtime implements full attention only", cpath)
	case hc.MLPBias:
		return nil, fmt.Errorf("%s: mlp_bias is true: this runtime implements bias-free MLPs only", cpath)
	case hc.PretrainingTP > 1:
		return nil, fmt.Errorf("%s: pretraining_tp %d: expected 1", cpath, hc.PretrainingTP)
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", cpath, err)
	}

	files, err := filepath.Glob(filepath.Join(dir, "*.safetensors"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("%s: no *.safetensors weights beside config.json", dir)
	}
	sort.Strings(files)
	tensors := map[string]safetensors.Tensor{}
	where := map[string]string{}
	for _, f := range files {
		ts, _, err := safetensors.Read(f)
		if err != nil {
			return nil, err
		}
		for name, t := range ts {
			if prev, ok := where[name]; ok {
				return nil, fmt.Errorf("%s: tensor %s is also in %s", f, name, prev)
			}
			tensors[name], where[name] = t, f
		}
	}
	used := map[string]bool{}
	get := func(name string, shape ...int) ([]float32, error) {
		t, ok := tensors[name]
		if !ok {
			return nil, fmt.Errorf("%s: no tensor %s in %s", dir, name, strings.Join(relNames(dir, files), ", "))
		}
		if !slices.Equal(t.Shape, shape) {
			return nil, fmt.Errorf("%s: tensor %s: expected shape %v for this config, found %v", where[name], name, shape, t.Shape)
		}
		used[name] = true
		return t.Data, nil
	}
	D, H, q, kv := c.Dim, c.Hidden, c.QDim(), c.KVDim()
	m := &Model{Config: c, Name: dir}
	if m.Embed, err = get("model.embed_tokens.weight", c.Vocab, D); err != nil {
		return nil, err
	}
	if m.Norm, err = get("model.norm.weight", D); err != nil {
		return nil, err
	}
	m.Out = m.Embed
	if _, ok := tensors["lm_head.weight"]; ok || !c.Tied {
		if m.Out, err = get("lm_head.weight", c.Vocab, D); err != nil {
			return nil, err
		}
	}
	for i := range c.Layers {
		p := fmt.Sprintf("model.layers.%d.", i)
		var bl Block
		for _, w := range []struct {
			dst   *[]float32
			name  string
			shape []int
		}{
			{&bl.AttnNorm, "input_layernorm.weight", []int{D}},
			{&bl.WQ, "self_attn.q_proj.weight", []int{q, D}},
			{&bl.WK, "self_attn.k_proj.weight", []int{kv, D}},
			{&bl.WV, "self_attn.v_proj.weight", []int{kv, D}},
			{&bl.WO, "self_attn.o_proj.weight", []int{D, q}},
			{&bl.MLPNorm, "post_attention_layernorm.weight", []int{D}},
			{&bl.WGate, "mlp.gate_proj.weight", []int{H, D}},
			{&bl.WUp, "mlp.up_proj.weight", []int{H, D}},
			{&bl.WDown, "mlp.down_proj.weight", []int{D, H}},
		} {
			if *w.dst, err = get(p+w.name, w.shape...); err != nil {
				return nil, err
			}
		}
		if c.QKVBias {
			if bl.BQ, err = get(p+"self_attn.q_proj.bias", q); err != nil {
				return nil, err
			}
			if bl.BK, err = get(p+"self_attn.k_proj.bias", kv); err != nil {
				return nil, err
			}
			if bl.BV, err = get(p+"self_attn.v_proj.bias", kv); err != nil {
				return nil, err
			}
		}
		m.Blocks = append(m.Blocks, bl)
	}
	for name := range tensors {
		if !used[name] && !strings.HasSuffix(name, "rotary_emb.inv_freq") {
			return nil, fmt.Errorf("%s: tensor %s is not part of a %s model of this config (is config.json the one these weights belong to?)", where[name], name, c.Arch)
		}
	}
	if err := m.init(); err != nil {
		return nil, err
	}
	return m, nil
}

func relNames(dir string, files []string) []string {
	out := make([]string, len(files))
	for i, f := range files {
		r, err := filepath.Rel(dir, f)
		if err != nil {
			r = f
		}
		out[i] = r
	}
	return out
}
