package model

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
)

// hfJSON is a small Llama config.json with the given fields changed (a nil
// value deletes the field).
func hfJSON(t *testing.T, change map[string]any) []byte {
	t.Helper()
	c := map[string]any{
		"model_type": "llama", "architectures": []string{"LlamaForCausalLM"}, "hidden_size": 64,
		"intermediate_size": 160, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
		"vocab_size": 100, "max_position_embeddings": 256, "rms_norm_eps": 1e-6, "rope_theta": 10000.0,
		"rope_scaling": nil,
	}
	for k, v := range change {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestHFConfigRope reads RoPE from every place a config.json may hold it.
func TestHFConfigRope(t *testing.T) {
	llama3 := map[string]any{"factor": 8.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
		"original_max_position_embeddings": 8192, "rope_type": "llama3"}
	for _, tc := range []struct {
		name   string
		change map[string]any
		theta  float64
		rope   RopeScaling
	}{
		{"top level", nil, 10000, RopeScaling{}},
		{"absent: transformers' default", map[string]any{"rope_theta": nil}, 10000, RopeScaling{}},
		{"transformers 5 rope_parameters", map[string]any{"rope_theta": nil,
			"rope_parameters": map[string]any{"rope_theta": 500000.0, "rope_type": "default"}}, 500000, RopeScaling{}},
		{"both, agreeing", map[string]any{"rope_theta": 500000.0,
			"rope_parameters": map[string]any{"rope_theta": 500000, "rope_type": "default"}}, 500000, RopeScaling{}},
		{"llama3 in rope_scaling", map[string]any{"rope_theta": 500000.0, "rope_scaling": llama3},
			500000, RopeScaling{Type: RopeLlama3, Factor: 8, LowFreqFactor: 1, HighFreqFactor: 4, OriginalMaxPos: 8192}},
		{"llama3 in rope_parameters", map[string]any{"rope_theta": nil, "rope_parameters": map[string]any{
			"factor": 8.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0, "original_max_position_embeddings": 8192,
			"rope_type": "llama3", "rope_theta": 500000.0}},
			500000, RopeScaling{Type: RopeLlama3, Factor: 8, LowFreqFactor: 1, HighFreqFactor: 4, OriginalMaxPos: 8192}},
		{"llama3 in both, 8 and 8.0", map[string]any{"rope_theta": nil, "rope_scaling": llama3, "rope_parameters": map[string]any{
			"factor": 8, "high_freq_factor": 4.0, "low_freq_factor": 1.0, "original_max_position_embeddings": 8192,
			"rope_type": "llama3", "rope_theta": 500000.0}},
			500000, RopeScaling{Type: RopeLlama3, Factor: 8, LowFreqFactor: 1, HighFreqFactor: 4, OriginalMaxPos: 8192}},
		{"linear", map[string]any{"rope_scaling": map[string]any{"type": "linear", "factor": 2.0}},
			10000, RopeScaling{Type: RopeLinear, Factor: 2}},
		{"yarn (Qwen2.5 and QwQ model cards)", map[string]any{"rope_scaling": map[string]any{"type": "yarn", "factor": 4.0,
			"original_max_position_embeddings": 32768}}, 10000, RopeScaling{Type: RopeYarn, Factor: 4, OriginalMaxPos: 32768}},
		{"yarn without original_max_position_embeddings: max_position_embeddings",
			map[string]any{"rope_scaling": map[string]any{"rope_type": "yarn", "factor": 4.0, "beta_fast": 16, "mscale": 0.707,
				"mscale_all_dim": 0.707, "truncate": false, "attention_factor": nil}},
			10000, RopeScaling{Type: RopeYarn, Factor: 4, OriginalMaxPos: 256, BetaFast: 16, Mscale: 0.707, MscaleAllDim: 0.707, NoTruncate: true}},
		{"yarn, top-level original_max_position_embeddings wins",
			map[string]any{"original_max_position_embeddings": 128, "rope_scaling": map[string]any{"rope_type": "yarn",
				"factor": 4.0, "original_max_position_embeddings": 64}},
			10000, RopeScaling{Type: RopeYarn, Factor: 4, OriginalMaxPos: 128}},
		{"default type with null parameters", map[string]any{"rope_scaling": map[string]any{"type": "default", "factor": nil}},
			10000, RopeScaling{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseHFConfig("config.json", hfJSON(t, tc.change))
			if err != nil {
				t.Fatal(err)
			}
			if c.Theta != tc.theta || c.Rope != tc.rope {
				t.Errorf("theta %g, rope %+v; want %g, %+v", c.Theta, c.Rope, tc.theta, tc.rope)
			}
		})
	}
}

// TestHFConfigRefused: what the runtime does not implement is refused with
// a one-line error naming the field and its value, never run with a
// default in its place.
func TestHFConfigRefused(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change map[string]any
		want   []string
	}{
		{"dynamic NTK", map[string]any{"rope_scaling": map[string]any{"rope_type": "dynamic", "factor": 2.0}},
			[]string{"rope_scaling.rope_type", `"dynamic"`}},
		{"longrope", map[string]any{"rope_theta": nil, "rope_parameters": map[string]any{"rope_type": "longrope",
			"rope_theta": 10000.0, "short_factor": []float64{1}, "long_factor": []float64{2}}},
			[]string{"rope_parameters.rope_type", `"longrope"`}},
		{"a parameter of another type", map[string]any{"rope_scaling": map[string]any{"rope_type": "linear", "factor": 2.0,
			"low_freq_factor": 1.0}}, []string{"rope_scaling.low_freq_factor", "linear"}},
		{"mrope", map[string]any{"rope_scaling": map[string]any{"type": "default", "mrope_section": []int{16, 24, 24}}},
			[]string{"rope_scaling.mrope_section"}},
		{"per layer type", map[string]any{"rope_parameters": map[string]any{"full_attention": map[string]any{"rope_type": "default"}}},
			[]string{"rope_parameters.full_attention"}},
		{"theta disagreeing", map[string]any{"rope_parameters": map[string]any{"rope_theta": 500000.0}},
			[]string{"rope_parameters.rope_theta 500000", "rope_theta 10000", "disagree"}},
		{"scaling disagreeing", map[string]any{"rope_scaling": map[string]any{"type": "linear", "factor": 2.0},
			"rope_parameters": map[string]any{"type": "linear", "factor": 4.0}}, []string{"rope_scaling.factor 2", "rope_parameters.factor 4"}},
		{"yarn without factor", map[string]any{"rope_scaling": map[string]any{"type": "yarn"}}, []string{"rope_scaling", "factor"}},
		{"llama3 without high_freq_factor", map[string]any{"rope_scaling": map[string]any{"rope_type": "llama3", "factor": 8.0,
			"low_freq_factor": 1.0, "original_max_position_embeddings": 8192}}, []string{"high_freq_factor"}},
		{"llama3 bands reversed", map[string]any{"rope_scaling": map[string]any{"rope_type": "llama3", "factor": 8.0,
			"low_freq_factor": 4.0, "high_freq_factor": 1.0, "original_max_position_embeddings": 8192}}, []string{"low_freq_factor", "high_freq_factor"}},
		{"factor as text", map[string]any{"rope_scaling": map[string]any{"type": "linear", "factor": "2"}}, []string{"rope_scaling.factor", `"2"`}},
		{"partial rotary", map[string]any{"partial_rotary_factor": 0.5}, []string{"partial_rotary_factor 0.5"}},
		{"sliding layers", map[string]any{"layer_types": []string{"full_attention", "sliding_attention"}}, []string{"layer_types[1]", "sliding_attention"}},
		{"qwen3 with biases", map[string]any{"model_type": "qwen3", "attention_bias": true}, []string{"attention_bias"}},
		{"positions beyond 2^48", map[string]any{"max_position_embeddings": 1e30}, []string{"max_position_embeddings", "1e+30"}},
		{"fractional positions", map[string]any{"max_position_embeddings": 100.5}, []string{"max_position_embeddings", "100.5"}},
		{"mistral", map[string]any{"model_type": "mistral"}, []string{"model_type", "mistral"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseHFConfig("dir/config.json", hfJSON(t, tc.change))
			if err == nil {
				t.Fatal("accepted")
			}
			msg := err.Error()
			t.Log(msg)
			if strings.Contains(msg, "\n") || !strings.HasPrefix(msg, "dir/config.json: ") {
				t.Errorf("error %q: want one line that starts with the file", msg)
			}
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not mention %q", msg, w)
				}
			}
		})
	}
}

// TestHFConfigQwen3 reads a Qwen3 config: q/k norms, an explicit head_dim
// whose product with the heads is not hidden_size, no biases.
func TestHFConfigQwen3(t *testing.T) {
	c, err := parseHFConfig("config.json", hfJSON(t, map[string]any{"model_type": "qwen3", "head_dim": 32,
		"attention_bias": false, "rope_theta": 1e6, "use_sliding_window": false, "sliding_window": nil,
		"layer_types": []string{"full_attention", "full_attention"}, "tie_word_embeddings": true}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Arch != ArchQwen3 || !c.QKNorm || c.QKVBias || c.HeadDim != 32 || c.QDim() != 128 || !c.Tied || c.Theta != 1e6 {
		t.Errorf("config %+v", c)
	}
	if got, want := c.Params(), int64(100*64+2*(2*64+64*128+2*64*64+128*64+3*64*160+2*32)+64); got != want {
		t.Errorf("Params() = %d, want %d", got, want)
	}
}

// TestYarnAttentionFactor follows transformers' defaults: 0.1·ln(factor)+1,
// or the ratio of that formula at mscale and mscale_all_dim, or the given
// attention_factor.
func TestYarnAttentionFactor(t *testing.T) {
	for _, tc := range []struct {
		r    RopeScaling
		want float64
	}{
		{RopeScaling{Type: RopeYarn, Factor: 4}, 0.1*math.Log(4) + 1},
		{RopeScaling{Type: RopeYarn, Factor: 1}, 1},
		{RopeScaling{Type: RopeYarn, Factor: 40, Mscale: 0.707, MscaleAllDim: 0.707}, 1},
		{RopeScaling{Type: RopeYarn, Factor: 40, Mscale: 1, MscaleAllDim: 0.5}, (0.1*math.Log(40) + 1) / (0.05*math.Log(40) + 1)},
		{RopeScaling{Type: RopeYarn, Factor: 4, AttentionFactor: 1.25}, 1.25},
	} {
		if got := (Config{Rope: tc.r}).yarnAttentionFactor(); math.Abs(got-tc.want) > 1e-15 {
			t.Errorf("%+v: %v, want %v", tc.r, got, tc.want)
		}
	}
}
