package model

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/rise-interp/rise/internal/safetensors"
)

// LoadHF reads a Hugging Face model directory of the Llama, Qwen2 or
// Qwen3 architecture: config.json and the weights in *.safetensors (one
// file or shards; F32, F16 or BF16), held in float32.
func LoadHF(dir string) (*Model, error) {
	cpath := filepath.Join(dir, "config.json")
	b, err := os.ReadFile(cpath)
	if err != nil {
		return nil, err
	}
	c, err := parseHFConfig(cpath, b)
	if err != nil {
		return nil, err
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
		if c.QKNorm {
			if bl.QNorm, err = get(p+"self_attn.q_norm.weight", c.HeadDim); err != nil {
				return nil, err
			}
			if bl.KNorm, err = get(p+"self_attn.k_norm.weight", c.HeadDim); err != nil {
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
