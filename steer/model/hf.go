package model

import (
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/rise-interp/rise/internal/files"
	"github.com/rise-interp/rise/internal/safetensors"
)

// LoadHF reads a Hugging Face model directory of the Llama, Qwen2 or
// Qwen3 architecture: config.json and the weights in *.safetensors (one
// file or shards; F32, F16 or BF16), each matrix held as stored.
func LoadHF(dir string) (*Model, error) { return LoadHFWith(dir, Options{}) }

// maxHFConfig bounds a model's config.json.
const maxHFConfig = 16 << 20

// LoadHFWith is LoadHF with a choice of precision. Tensors are read one at
// a time, and 16-bit matrices kept at their stored precision are read
// straight into the model's memory, so loading takes little more memory
// than the weights.
func LoadHFWith(dir string, o Options) (*Model, error) {
	cpath := filepath.Join(dir, "config.json")
	b, err := files.ReadRegular(cpath, maxHFConfig, "a model config.json")
	if err != nil {
		return nil, err
	}
	c, err := parseHFConfig(cpath, b)
	if err != nil {
		return nil, err
	}

	shards, err := filepath.Glob(filepath.Join(dir, "*.safetensors"))
	if err != nil {
		return nil, err
	}
	if len(shards) == 0 {
		return nil, fmt.Errorf("%s: no *.safetensors weights beside config.json", dir)
	}
	sort.Strings(shards)
	tensors := map[string]*safetensors.File{}
	where := map[string]string{}
	for _, f := range shards {
		st, err := safetensors.Open(f)
		if err != nil {
			return nil, err
		}
		defer st.Close()
		for _, name := range st.Names() {
			if prev, ok := where[name]; ok {
				return nil, fmt.Errorf("%s: tensor %s is also in %s", f, name, prev)
			}
			tensors[name], where[name] = st, f
		}
	}
	if err := checkHFMemory(dir, tensors, o); err != nil {
		return nil, err
	}
	used := map[string]bool{}
	find := func(name string, shape ...int) (*safetensors.File, error) {
		st, ok := tensors[name]
		if !ok {
			return nil, fmt.Errorf("%s: no tensor %s in %s", dir, name, strings.Join(relNames(dir, shards), ", "))
		}
		if got, _ := st.Shape(name); !slices.Equal(got, shape) {
			return nil, fmt.Errorf("%s: tensor %s: expected shape %v for this config, found %v", where[name], name, shape, got)
		}
		used[name] = true
		return st, nil
	}
	get := func(name string, shape ...int) ([]float32, error) {
		st, err := find(name, shape...)
		if err != nil {
			return nil, err
		}
		t, err := st.Read(name)
		return t.Data, err
	}
	getM := func(dst *Matrix, name string, rows, cols int) error {
		st, err := find(name, rows, cols)
		if err != nil {
			return err
		}
		*dst, err = readMatrix(st, name, rows, cols, o)
		return err
	}
	D, H, q, kv := c.Dim, c.Hidden, c.QDim(), c.KVDim()
	m := &Model{Config: c, Name: dir}
	if err := getM(&m.Embed, "model.embed_tokens.weight", c.Vocab, D); err != nil {
		return nil, err
	}
	if m.Norm, err = get("model.norm.weight", D); err != nil {
		return nil, err
	}
	m.Out = m.Embed
	if _, ok := tensors["lm_head.weight"]; ok || !c.Tied {
		if err := getM(&m.Out, "lm_head.weight", c.Vocab, D); err != nil {
			return nil, err
		}
	}
	for i := range c.Layers {
		p := fmt.Sprintf("model.layers.%d.", i)
		var bl Block
		if bl.AttnNorm, err = get(p+"input_layernorm.weight", D); err != nil {
			return nil, err
		}
		if bl.MLPNorm, err = get(p+"post_attention_layernorm.weight", D); err != nil {
			return nil, err
		}
		for _, w := range []struct {
			dst        *Matrix
			name       string
			rows, cols int
		}{
			{&bl.WQ, "self_attn.q_proj.weight", q, D},
			{&bl.WK, "self_attn.k_proj.weight", kv, D},
			{&bl.WV, "self_attn.v_proj.weight", kv, D},
			{&bl.WO, "self_attn.o_proj.weight", D, q},
			{&bl.WGate, "mlp.gate_proj.weight", H, D},
			{&bl.WUp, "mlp.up_proj.weight", H, D},
			{&bl.WDown, "mlp.down_proj.weight", D, H},
		} {
			if err := getM(w.dst, p+w.name, w.rows, w.cols); err != nil {
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
