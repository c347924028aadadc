package sae

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rise-interp/rise/activations"
	"github.com/rise-interp/rise/internal/jsontest"
	"github.com/rise-interp/rise/internal/safetensors"
)

// testSAE builds an SAE with random weights, biases and thresholds.
func testSAE(t *testing.T, arch Arch, din, dsae, k int, seed uint64) *SAE {
	t.Helper()
	s, err := New(arch, din, dsae, k)
	if err != nil {
		t.Fatal(err)
	}
	s.Init(seed, 0.5, nil, 0.05)
	rng := rand.New(rand.NewPCG(seed, 7))
	for i := range s.WEnc {
		s.WEnc[i] += float32(rng.NormFloat64()) * 0.2
	}
	for i := range s.BEnc {
		s.BEnc[i] = float32(rng.NormFloat64()) * 0.1
	}
	for i := range s.BDec {
		s.BDec[i] = float32(rng.NormFloat64()) * 0.3
	}
	for i := range s.Threshold {
		s.Threshold[i] = float32(rng.Float64()) * 0.2
	}
	s.Metadata = Metadata{ModelName: "tiny-model", HookName: "blocks.3.hook_resid_post", HookLayer: 3, Dataset: "dumps/math", Position: "step_delimiter"}
	return s
}

// testRows draws n rows of width d.
func testRows(n, d int, seed uint64) []float32 {
	rng := rand.New(rand.NewPCG(seed, 11))
	x := make([]float32, n*d)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	return x
}

// forward runs Encode then Decode.
func forward(s *SAE, x []float32) (f, xhat []float32) {
	n := len(x) / s.DIn
	f = make([]float32, n*s.DSae)
	xhat = make([]float32, n*s.DIn)
	s.Encode(x, f)
	s.Decode(f, xhat)
	return f, xhat
}

// closeTo checks got against want elementwise within rel·|want| + abs.
func closeTo(t *testing.T, what string, got, want []float32, rel, abs float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	bad := 0
	for i := range want {
		if d := math.Abs(float64(got[i]) - float64(want[i])); d > rel*math.Abs(float64(want[i]))+abs {
			if bad < 3 {
				t.Errorf("%s[%d] = %g, want %g", what, i, got[i], want[i])
			}
			bad++
		}
	}
	if bad > 3 {
		t.Errorf("%s: %d values out of tolerance", what, bad)
	}
}

func readCfg(t *testing.T, dir string) map[string]any {
	t.Helper()
	var m map[string]any
	jsontest.ReadFile(t, filepath.Join(dir, SAELensConfigFile), &m)
	return m
}

func TestSAELensSaveLoadRoundTrip(t *testing.T) {
	const din, dsae, k = 8, 24, 4
	x := testRows(16, din, 99)
	for _, arch := range []Arch{Standard, TopK, JumpReLU, BatchTopK} {
		for _, dtype := range []string{"float32", "float16", "bfloat16"} {
			for _, scale := range []float32{1, 3} {
				t.Run(fmt.Sprintf("%s/%s/scale%g", arch, dtype, scale), func(t *testing.T) {
					s := testSAE(t, arch, din, dsae, k, 5)
					s.InputScale = scale
					if scale != 1 {
						s.Normalization = activations.NormMeanNorm
					}
					before := s.Clone()
					f0, xhat0 := forward(s, x)

					dir := filepath.Join(t.TempDir(), "sae")
					extra := map[string]any{"training": map[string]any{"lr": 1e-4, "steps": 100}, "explained_variance": 0.9}
					if err := Save(dir, s, SaveOptions{DType: dtype, Extra: extra}); err != nil {
						t.Fatal(err)
					}
					// Save works on a copy.
					if s.InputScale != scale || relErr(s.WEnc, before.WEnc) != 0 || s.Arch != arch {
						t.Fatal("Save changed the SAE it was given")
					}

					got, err := Load(dir)
					if err != nil {
						t.Fatal(err)
					}
					wantArch := arch
					if arch == BatchTopK {
						wantArch = JumpReLU
					}
					if got.Arch != wantArch || got.DIn != din || got.DSae != dsae || got.InputScale != 1 ||
						got.Normalization != activations.NormNone || got.ApplyBDecToInput != s.ApplyBDecToInput {
						t.Fatalf("loaded %s d_in %d d_sae %d scale %g norm %s b_dec-in %v; want %s %d %d 1 none %v",
							got.Arch, got.DIn, got.DSae, got.InputScale, got.Normalization, got.ApplyBDecToInput, wantArch, din, dsae, s.ApplyBDecToInput)
					}
					if arch == TopK && got.K != k {
						t.Errorf("loaded k %d, want %d", got.K, k)
					}
					if got.Metadata != s.Metadata {
						t.Errorf("loaded metadata %+v, want %+v", got.Metadata, s.Metadata)
					}

					// The weights are the folded ones, within the dtype's precision.
					folded := s.Clone()
					folded.FoldInputScale()
					rel, abs := 0.0, 0.0
					switch dtype {
					case "float16":
						rel, abs = 1.0/2048, 6e-8
					case "bfloat16":
						rel, abs = 1.0/256, 1e-30
					}
					closeTo(t, "W_enc", got.WEnc, folded.WEnc, rel, abs)
					closeTo(t, "W_dec", got.WDec, folded.WDec, rel, abs)
					closeTo(t, "b_enc", got.BEnc, folded.BEnc, rel, abs)
					closeTo(t, "b_dec", got.BDec, folded.BDec, rel, abs)
					if wantArch == JumpReLU {
						closeTo(t, "threshold", got.Threshold, folded.Threshold, rel, abs)
					}

					// In float32 the loaded SAE, on raw inputs, reproduces the
					// original (scaling its inputs) exactly up to rounding.
					if dtype == "float32" {
						f1, xhat1 := forward(got, x)
						if e := relErr(xhat1, xhat0); e > 1e-4 {
							t.Errorf("x_hat after loading differs by %g relative, want <= 1e-4", e)
						}
						if e := relErr(f1, f0); e > 1e-4 {
							t.Errorf("latents after loading differ by %g relative, want <= 1e-4", e)
						}
					}

					cfg := readCfg(t, dir)
					meta := cfg["metadata"].(map[string]any)
					if cfg["architecture"] != string(wantArch) || cfg["normalize_activations"] != "none" ||
						cfg["dtype"] != dtype || cfg["device"] != "cpu" || cfg["reshape_activations"] != "none" {
						t.Errorf("cfg.json %v: unexpected architecture, normalization, dtype, device or reshape", cfg)
					}
					if meta["rise_input_scale"] != float64(scale) || meta["rise_architecture"] != string(arch) {
						t.Errorf("metadata %v: want rise_input_scale %g and rise_architecture %s", meta, scale, arch)
					}
					wantNorm := "none"
					if scale != 1 {
						wantNorm = string(activations.NormMeanNorm)
					}
					if meta["rise_normalization"] != wantNorm {
						t.Errorf("metadata rise_normalization %v, want %s", meta["rise_normalization"], wantNorm)
					}
					if meta["explained_variance"] != 0.9 || meta["training"].(map[string]any)["steps"] != 100.0 {
						t.Errorf("metadata %v: the Extra entries are missing", meta)
					}
				})
			}
		}
	}
}

func TestSAELensConfigLayout(t *testing.T) {
	s := testSAE(t, TopK, 4, 8, 2, 1)
	s.ApplyBDecToInput = false
	dir := t.TempDir()
	if err := Save(dir, s, SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	cfg := readCfg(t, dir)
	want := map[string]any{
		"architecture": "topk", "d_in": 4.0, "d_sae": 8.0, "dtype": "float32", "device": "cpu",
		"apply_b_dec_to_input": false, "normalize_activations": "none", "reshape_activations": "none",
		"k": 2.0, "rescale_acts_by_decoder_norm": false,
	}
	for key, v := range want {
		if cfg[key] != v {
			t.Errorf("cfg.json %s = %v, want %v", key, cfg[key], v)
		}
	}
	meta, ok := cfg["metadata"].(map[string]any)
	if !ok {
		t.Fatalf("cfg.json metadata = %v, want an object", cfg["metadata"])
	}
	for key, v := range map[string]any{"model_name": "tiny-model", "hook_name": "blocks.3.hook_resid_post",
		"hook_layer": 3.0, "dataset_path": "dumps/math", "sae_lens_version": saelensFormatVersion} {
		if meta[key] != v {
			t.Errorf("cfg.json metadata.%s = %v, want %v", key, meta[key], v)
		}
	}
	tensors, _, err := safetensors.Read(filepath.Join(dir, SAELensWeightsFile))
	if err != nil {
		t.Fatal(err)
	}
	shapes := map[string]string{"W_enc": "[4 8]", "W_dec": "[8 4]", "b_enc": "[8]", "b_dec": "[4]"}
	if len(tensors) != len(shapes) {
		t.Errorf("sae_weights.safetensors holds %d tensors, want %d", len(tensors), len(shapes))
	}
	for name, sh := range shapes {
		if fmt.Sprint(tensors[name].Shape) != sh {
			t.Errorf("%s shape %v, want %s", name, tensors[name].Shape, sh)
		}
	}

	// A jumprelu file carries the threshold; no k.
	j := testSAE(t, JumpReLU, 4, 8, 0, 2)
	jdir := t.TempDir()
	if err := Save(jdir, j, SaveOptions{DType: "BF16"}); err != nil {
		t.Fatal(err)
	}
	if cfg := readCfg(t, jdir); cfg["k"] != nil || cfg["dtype"] != "bfloat16" {
		t.Errorf("jumprelu cfg.json %v: want no k and dtype bfloat16", cfg)
	}
	if tensors, _, err := safetensors.Read(filepath.Join(jdir, SAELensWeightsFile)); err != nil || fmt.Sprint(tensors["threshold"].Shape) != "[8]" {
		t.Errorf("jumprelu weights: %v, threshold shape %v; want [8]", err, tensors["threshold"].Shape)
	}
}

func TestSAELensSaveErrors(t *testing.T) {
	s := testSAE(t, Standard, 4, 8, 0, 3)
	dir := t.TempDir()
	if err := Save(dir, s, SaveOptions{Extra: map[string]any{"hook_name": "x"}}); err == nil || !strings.Contains(err.Error(), "hook_name") {
		t.Errorf("Extra reusing hook_name: got %v, want an error", err)
	}
	if err := Save(dir, s, SaveOptions{DType: "int8"}); err == nil || !strings.Contains(err.Error(), "int8") {
		t.Errorf("dtype int8: got %v, want an error", err)
	}
	bad := s.Clone()
	bad.WDec[5] = float32(math.NaN())
	if err := Save(dir, bad, SaveOptions{}); err == nil || !strings.Contains(err.Error(), "W_dec") || !strings.Contains(err.Error(), dir) {
		t.Errorf("NaN weight: got %v, want an error naming W_dec and %s", err, dir)
	}
	if _, err := os.Stat(filepath.Join(dir, SAELensConfigFile)); err == nil {
		t.Error("a failed Save left a cfg.json behind")
	}
	// float16 cannot hold a huge weight: refused, nothing written.
	big := s.Clone()
	big.WEnc[0] = 1e6
	if err := Save(dir, big, SaveOptions{DType: "float16"}); err == nil || !strings.Contains(err.Error(), "W_enc") {
		t.Errorf("float16 overflow: got %v, want an error naming W_enc", err)
	}
}

// writeSAELensDir writes a hand-made SAELens directory: cfg as given and
// tensors in dtype.
func writeSAELensDir(t *testing.T, dir string, cfg map[string]any, tensors []safetensors.Tensor, dtype string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, SAELensConfigFile), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := safetensors.Write(filepath.Join(dir, SAELensWeightsFile), tensors, dtype, nil); err != nil {
		t.Fatal(err)
	}
}

// saelensTensors returns the SAELens tensors of s.
func saelensTensors(s *SAE) []safetensors.Tensor {
	ts := []safetensors.Tensor{
		{Name: "W_enc", Shape: []int{s.DIn, s.DSae}, Data: s.WEnc},
		{Name: "W_dec", Shape: []int{s.DSae, s.DIn}, Data: s.WDec},
		{Name: "b_enc", Shape: []int{s.DSae}, Data: s.BEnc},
		{Name: "b_dec", Shape: []int{s.DIn}, Data: s.BDec},
	}
	if s.Threshold != nil {
		ts = append(ts, safetensors.Tensor{Name: "threshold", Shape: []int{s.DSae}, Data: s.Threshold})
	}
	return ts
}

// TestSAELensLoadOldConfig reads a pre-6 cfg.json: metadata at the top level,
// hook_point, no architecture, activation_fn_str "topk" with k in
// activation_fn_kwargs, normalize_activations false, bfloat16 tensors.
func TestSAELensLoadOldConfig(t *testing.T) {
	s := testSAE(t, TopK, 6, 10, 3, 4)
	dir := t.TempDir()
	cfg := map[string]any{
		"d_in": 6, "d_sae": 10, "dtype": "torch.bfloat16", "device": "cuda",
		"model_name": "gpt2-small", "hook_point": "blocks.8.hook_resid_pre", "hook_point_layer": 8,
		"dataset_path": "Skylion007/openwebtext", "context_size": 128,
		"activation_fn_str": "topk", "activation_fn_kwargs": map[string]any{"k": 3},
		"normalize_activations": false, "apply_b_dec_to_input": true, "finetuning_scaling_factor": false,
		"sae_lens_training_version": "3.5.0",
	}
	writeSAELensDir(t, dir, cfg, saelensTensors(s), safetensors.BF16)
	got, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got.Arch != TopK || got.K != 3 || !got.ApplyBDecToInput {
		t.Errorf("loaded %s k %d b_dec-in %v, want topk 3 true", got.Arch, got.K, got.ApplyBDecToInput)
	}
	want := Metadata{ModelName: "gpt2-small", HookName: "blocks.8.hook_resid_pre", HookLayer: 8, Dataset: "Skylion007/openwebtext"}
	if got.Metadata != want {
		t.Errorf("metadata %+v, want %+v", got.Metadata, want)
	}
	closeTo(t, "W_enc", got.WEnc, s.WEnc, 1.0/256, 1e-30)

	// The same with normalize_activations true: loads, marked as expecting
	// mean-norm scaled inputs.
	cfg["normalize_activations"] = true
	writeSAELensDir(t, dir, cfg, saelensTensors(s), safetensors.F32)
	if got, err := Load(dir); err != nil || got.Normalization != activations.NormMeanNorm || got.InputScale != 1 {
		t.Errorf("normalize_activations true: %v, normalization %v; want expected_average_only_in with scale 1", err, got)
	}
}

// TestSAELensLoadReparametrised checks the equivalent forms SAELens files
// may take: log_threshold, a finetuning scaling factor, and a topk SAE that
// rescales pre-activations by the decoder norms.
func TestSAELensLoadReparametrised(t *testing.T) {
	x := testRows(12, 6, 3)

	t.Run("log_threshold", func(t *testing.T) {
		s := testSAE(t, JumpReLU, 6, 10, 0, 8)
		logT := make([]float32, len(s.Threshold))
		for j, v := range s.Threshold {
			logT[j] = float32(math.Log(float64(v) + 0.01))
			s.Threshold[j] = float32(math.Exp(float64(logT[j])))
		}
		ts := saelensTensors(s)
		ts[4] = safetensors.Tensor{Name: "log_threshold", Shape: []int{10}, Data: logT}
		dir := t.TempDir()
		writeSAELensDir(t, dir, map[string]any{"architecture": "jumprelu", "d_in": 6, "d_sae": 10}, ts, safetensors.F32)
		got, err := Load(dir)
		if err != nil {
			t.Fatal(err)
		}
		closeTo(t, "threshold", got.Threshold, s.Threshold, 1e-6, 0)
	})

	t.Run("scaling_factor", func(t *testing.T) {
		s := testSAE(t, Standard, 6, 10, 0, 9)
		sf := make([]float32, 10)
		for j := range sf {
			sf[j] = 0.5 + float32(j)/10
		}
		dir := t.TempDir()
		ts := append(saelensTensors(s), safetensors.Tensor{Name: "scaling_factor", Shape: []int{10}, Data: sf})
		writeSAELensDir(t, dir, map[string]any{"architecture": "standard", "d_in": 6, "d_sae": 10, "finetuning_scaling_factor": true}, ts, safetensors.F32)
		got, err := Load(dir)
		if err != nil {
			t.Fatal(err)
		}
		// SAELens: x_hat = (f * scaling_factor) W_dec + b_dec.
		f, _ := forward(s, x)
		want := make([]float32, 12*6)
		for r := range 12 {
			for j := range 10 {
				for i := range 6 {
					want[r*6+i] += f[r*10+j] * sf[j] * s.WDec[j*6+i]
				}
			}
			for i := range 6 {
				want[r*6+i] += s.BDec[i]
			}
		}
		_, xhat := forward(got, x)
		if e := relErr(xhat, want); e > 1e-5 {
			t.Errorf("x_hat differs from SAELens's by %g relative", e)
		}
	})

	t.Run("rescale_acts_by_decoder_norm", func(t *testing.T) {
		s := testSAE(t, TopK, 6, 10, 3, 10)
		for j := range 10 { // decoder rows of uneven norms
			for i := range 6 {
				s.WDec[j*6+i] *= float32(j + 1)
			}
		}
		dir := t.TempDir()
		writeSAELensDir(t, dir, map[string]any{"architecture": "topk", "d_in": 6, "d_sae": 10, "k": 3,
			"rescale_acts_by_decoder_norm": true, "metadata": map[string]any{"sae_lens_version": "6.5.0"}}, saelensTensors(s), safetensors.F32)
		got, err := Load(dir)
		if err != nil {
			t.Fatal(err)
		}
		// SAELens: pre = ((x - b_dec) W_enc + b_enc) * ||W_dec[j]||; f = relu(topk(pre));
		// x_hat = (f / ||W_dec[j]||) W_dec + b_dec.
		norms := make([]float64, 10)
		for j := range 10 {
			for i := range 6 {
				norms[j] += float64(s.WDec[j*6+i]) * float64(s.WDec[j*6+i])
			}
			norms[j] = math.Sqrt(norms[j])
		}
		wantF := make([]float32, 12*10)
		wantX := make([]float32, 12*6)
		for r := range 12 {
			pre := make([]float32, 10)
			for j := range 10 {
				v := float64(s.BEnc[j])
				for i := range 6 {
					v += float64(x[r*6+i]-s.BDec[i]) * float64(s.WEnc[i*10+j])
				}
				pre[j] = float32(v * norms[j])
			}
			idx := topKIndices(pre, 3, make([]int, 0, 3))
			for _, j := range idx {
				wantF[r*10+j] = max(pre[j], 0)
			}
			for i := range 6 {
				v := float64(s.BDec[i])
				for j := range 10 {
					v += float64(wantF[r*10+j]) / norms[j] * float64(s.WDec[j*6+i])
				}
				wantX[r*6+i] = float32(v)
			}
		}
		f, xhat := forward(got, x)
		if e := relErr(f, wantF); e > 1e-5 {
			t.Errorf("latents differ from SAELens's by %g relative", e)
		}
		if e := relErr(xhat, wantX); e > 1e-5 {
			t.Errorf("x_hat differs from SAELens's by %g relative", e)
		}
	})
}

func TestSAELensLoadErrors(t *testing.T) {
	s := testSAE(t, JumpReLU, 4, 6, 0, 12)
	base := func() map[string]any {
		return map[string]any{"architecture": "jumprelu", "d_in": 4, "d_sae": 6, "dtype": "float32",
			"apply_b_dec_to_input": true, "normalize_activations": "none", "metadata": map[string]any{"sae_lens_version": "6.0.0"}}
	}
	cases := []struct {
		name    string
		cfg     func(map[string]any)
		tensors func([]safetensors.Tensor) []safetensors.Tensor
		rawCfg  string // written as cfg.json instead of cfg when set
		file    string // which file the error must name
		want    []string
	}{
		{name: "gated", cfg: func(c map[string]any) { c["architecture"] = "gated" }, file: SAELensConfigFile, want: []string{"gated", "not supported"}},
		{name: "unknown architecture", cfg: func(c map[string]any) { c["architecture"] = "matryoshka" }, file: SAELensConfigFile, want: []string{`unknown architecture "matryoshka"`}},
		{name: "d_sae disagrees", cfg: func(c map[string]any) { c["d_sae"] = 5 }, file: SAELensWeightsFile,
			want: []string{"W_enc has shape [4, 6], expected [d_in 4, d_sae 5] from", SAELensConfigFile}},
		{name: "d_in disagrees", cfg: func(c map[string]any) { c["d_in"] = 3 }, file: SAELensWeightsFile,
			want: []string{"has shape", "expected [d_in 3"}},
		{name: "missing d_sae", cfg: func(c map[string]any) { delete(c, "d_sae") }, file: SAELensConfigFile, want: []string{"d_sae is missing"}},
		{name: "string d_in", cfg: func(c map[string]any) { c["d_in"] = "4" }, file: SAELensConfigFile, want: []string{"d_in", "expected an integer"}},
		{name: "layer_norm", cfg: func(c map[string]any) { c["normalize_activations"] = "layer_norm" }, file: SAELensConfigFile, want: []string{"layer_norm"}},
		{name: "topk without k", cfg: func(c map[string]any) { c["architecture"] = "topk" }, file: SAELensConfigFile, want: []string{"k 0"}},
		{name: "malformed cfg", rawCfg: `{"architecture": "jumprelu", "d_in": 4,`, file: SAELensConfigFile, want: []string{"malformed JSON"}},
		{name: "NaN weights", tensors: func(ts []safetensors.Tensor) []safetensors.Tensor {
			ts[1].Data = append([]float32(nil), ts[1].Data...)
			ts[1].Data[7] = float32(math.NaN())
			return ts
		}, file: SAELensWeightsFile, want: []string{"W_dec value 7 is NaN"}},
		{name: "missing threshold", tensors: func(ts []safetensors.Tensor) []safetensors.Tensor { return ts[:4] }, file: SAELensWeightsFile, want: []string{"no threshold"}},
		{name: "missing b_enc", tensors: func(ts []safetensors.Tensor) []safetensors.Tensor { return append(ts[:2:2], ts[3:]...) }, file: SAELensWeightsFile, want: []string{"b_enc is missing"}},
		{name: "unexpected tensor", tensors: func(ts []safetensors.Tensor) []safetensors.Tensor {
			return append(ts, safetensors.Tensor{Name: "b_gate", Shape: []int{6}, Data: make([]float32, 6)})
		}, file: SAELensWeightsFile, want: []string{`unexpected tensor "b_gate"`}},
		{name: "wrong bias shape", tensors: func(ts []safetensors.Tensor) []safetensors.Tensor {
			ts[2] = safetensors.Tensor{Name: "b_enc", Shape: []int{2, 3}, Data: make([]float32, 6)}
			return ts
		}, file: SAELensWeightsFile, want: []string{"b_enc has shape [2, 3], expected [d_sae 6]"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := base()
			if tc.cfg != nil {
				tc.cfg(cfg)
			}
			ts := saelensTensors(s.Clone())
			if tc.tensors != nil {
				ts = tc.tensors(ts)
			}
			writeSAELensDir(t, dir, cfg, ts, safetensors.F32)
			if tc.rawCfg != "" {
				if err := os.WriteFile(filepath.Join(dir, SAELensConfigFile), []byte(tc.rawCfg), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			_, err := Load(dir)
			wantFileError(t, err, filepath.Join(dir, tc.file), tc.want)
		})
	}

	t.Run("missing files", func(t *testing.T) {
		dir := t.TempDir()
		if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), filepath.Join(dir, SAELensConfigFile)) {
			t.Errorf("no cfg.json: got %v, want an error naming it", err)
		}
		writeSAELensDir(t, dir, base(), saelensTensors(s), safetensors.F32)
		os.Remove(filepath.Join(dir, SAELensWeightsFile))
		if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), filepath.Join(dir, SAELensWeightsFile)) {
			t.Errorf("no weights: got %v, want an error naming them", err)
		}
	})

	t.Run("truncated weights", func(t *testing.T) {
		dir := t.TempDir()
		writeSAELensDir(t, dir, base(), saelensTensors(s), safetensors.F32)
		w := filepath.Join(dir, SAELensWeightsFile)
		b, _ := os.ReadFile(w)
		os.WriteFile(w, b[:len(b)-5], 0o644)
		if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), w) || !strings.Contains(err.Error(), "truncated") {
			t.Errorf("truncated weights: got %v, want an error naming %s", err, w)
		}
	})
}
