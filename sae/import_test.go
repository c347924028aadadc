package sae

import (
	"archive/zip"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"codeberg.org/sbinet/npyio/npz"
	"github.com/x448/float16"

	"github.com/rise-interp/rise/internal/npytest"
	"github.com/rise-interp/rise/internal/safetensors"
)

// rows2D splits x into rows of width d, the layout npyio writes as a
// two-dimensional array.
func rows2D(x []float32, d int) [][]float32 {
	var out [][]float32
	for i := 0; i < len(x); i += d {
		out = append(out, x[i:i+d])
	}
	return out
}

// gemmaForward is Gemma Scope's JumpReLU forward pass, written out by hand:
// pre = x W_enc + b_enc (no b_dec subtraction), f = pre where pre >
// threshold (and positive), x_hat = f W_dec + b_dec.
func gemmaForward(x, wenc, wdec, benc, bdec, thr []float32, din, dsae int) (f, xhat []float32) {
	n := len(x) / din
	f = make([]float32, n*dsae)
	xhat = make([]float32, n*din)
	for r := range n {
		for j := range dsae {
			v := float64(benc[j])
			for i := range din {
				v += float64(x[r*din+i]) * float64(wenc[i*dsae+j])
			}
			if v > float64(thr[j]) && v > 0 {
				f[r*dsae+j] = float32(v)
			}
		}
		for i := range din {
			v := float64(bdec[i])
			for j := range dsae {
				v += float64(f[r*dsae+j]) * float64(wdec[j*din+i])
			}
			xhat[r*din+i] = float32(v)
		}
	}
	return f, xhat
}

func TestImportGemmaScope(t *testing.T) {
	const din, dsae = 5, 9
	s := testSAE(t, JumpReLU, din, dsae, 0, 21)
	dir := filepath.Join(t.TempDir(), "layer_7", "width_16k", "average_l0_71")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, GemmaScopeFile)
	// npyio's writer, independent of the reader under test; numpy's np.savez
	// names the members W_enc.npy and so on.
	err := npz.Write(path, map[string]any{
		"W_enc.npy":     rows2D(s.WEnc, dsae),
		"W_dec.npy":     rows2D(s.WDec, din),
		"b_enc.npy":     s.BEnc,
		"b_dec.npy":     s.BDec,
		"threshold.npy": s.Threshold,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, dir} {
		got, err := ImportGemmaScope(p)
		if err != nil {
			t.Fatal(err)
		}
		if got.Arch != JumpReLU || got.ApplyBDecToInput || got.DIn != din || got.DSae != dsae || got.InputScale != 1 {
			t.Fatalf("imported %s b_dec-in %v %dx%d scale %g; want jumprelu false %dx%d 1", got.Arch, got.ApplyBDecToInput, got.DIn, got.DSae, got.InputScale, din, dsae)
		}
		if got.Metadata.HookLayer != 7 {
			t.Errorf("hook layer %d, want 7 from the path", got.Metadata.HookLayer)
		}
		x := testRows(20, din, 4)
		wantF, wantX := gemmaForward(x, s.WEnc, s.WDec, s.BEnc, s.BDec, s.Threshold, din, dsae)
		f, xhat := forward(got, x)
		active := 0
		for _, v := range wantF {
			if v != 0 {
				active++
			}
		}
		if active == 0 || active == len(wantF) {
			t.Fatalf("test data gives %d of %d active latents; want some of each", active, len(wantF))
		}
		closeTo(t, "latents", f, wantF, 1e-5, 1e-6)
		closeTo(t, "x_hat", xhat, wantX, 1e-5, 1e-6)
	}
	if got, err := LoadAny(dir); err != nil || got.Arch != JumpReLU {
		t.Errorf("LoadAny(dir): %v", err)
	}
	if got, err := LoadAny(path); err != nil || got.Arch != JumpReLU {
		t.Errorf("LoadAny(params.npz): %v", err)
	}
}

// writeZip writes members in order, stored or deflated.
func writeZip(t *testing.T, path string, deflate bool, members map[string][]byte) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(f)
	for _, name := range slices.Sorted(maps.Keys(members)) {
		method := zip.Store
		if deflate {
			method = zip.Deflate
		}
		w, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: method})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(members[name]); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// gemmaMembers lays s out as .npy members written by hand: W_enc in Fortran
// order, W_dec as float16, the rest as float32 (as np.savez_compressed would
// for arrays of those types).
func gemmaMembers(s *SAE) map[string][]byte {
	din, dsae := s.DIn, s.DSae
	fort := make([]float32, din*dsae)
	for i := range din {
		for j := range dsae {
			fort[j*din+i] = s.WEnc[i*dsae+j]
		}
	}
	var half []byte
	for _, v := range s.WDec {
		half = binary.LittleEndian.AppendUint16(half, float16.Fromfloat32(v).Bits())
	}
	return map[string][]byte{
		"W_enc.npy":     npytest.File("<f4", true, fmt.Sprintf("(%d, %d)", din, dsae), npytest.Float32s(fort...)),
		"W_dec.npy":     npytest.File("<f2", false, fmt.Sprintf("(%d, %d)", dsae, din), half),
		"b_enc.npy":     npytest.File("<f4", false, fmt.Sprintf("(%d,)", dsae), npytest.Float32s(s.BEnc...)),
		"b_dec.npy":     npytest.File("<f4", false, fmt.Sprintf("(%d,)", din), npytest.Float32s(s.BDec...)),
		"threshold.npy": npytest.File("<f4", false, fmt.Sprintf("(%d,)", dsae), npytest.Float32s(s.Threshold...)),
	}
}

func TestImportGemmaScopeHandMade(t *testing.T) {
	s := testSAE(t, JumpReLU, 4, 6, 0, 31)
	for _, deflate := range []bool{false, true} {
		path := filepath.Join(t.TempDir(), "params.npz")
		writeZip(t, path, deflate, gemmaMembers(s))
		got, err := ImportGemmaScope(path)
		if err != nil {
			t.Fatal(err)
		}
		closeTo(t, "W_enc (Fortran order)", got.WEnc, s.WEnc, 0, 0)
		closeTo(t, "W_dec (float16)", got.WDec, s.WDec, 1.0/2048, 6e-8)
		closeTo(t, "threshold", got.Threshold, s.Threshold, 0, 0)
	}
}

func TestImportGemmaScopeErrors(t *testing.T) {
	s := testSAE(t, JumpReLU, 4, 6, 0, 32)
	cases := []struct {
		name   string
		mutate func(m map[string][]byte)
		want   []string
	}{
		{"missing threshold", func(m map[string][]byte) { delete(m, "threshold.npy") }, []string{"threshold is missing"}},
		{"wrong shape", func(m map[string][]byte) {
			m["b_enc.npy"] = npytest.File("<f4", false, "(5,)", make([]byte, 5*4))
		}, []string{"b_enc has shape [5], expected [d_sae 6] from W_enc [4, 6]"}},
		{"int64", func(m map[string][]byte) {
			m["b_dec.npy"] = npytest.File("<i8", false, "(4,)", make([]byte, 32))
		}, []string{"b_dec.npy", "int64", "expected float32"}},
		{"truncated member", func(m map[string][]byte) {
			b := m["W_enc.npy"]
			m["W_enc.npy"] = b[:len(b)-4]
		}, []string{"W_enc.npy", "needs"}},
		{"three dimensions", func(m map[string][]byte) {
			m["b_dec.npy"] = npytest.File("<f4", false, "(1, 2, 2)", make([]byte, 4*4))
		}, []string{"b_dec.npy", "one or two dimensions"}},
		{"corrupt header", func(m map[string][]byte) {
			m["b_dec.npy"] = append([]byte("\x93NUMPY\x01\x00\x05\x00{'des"), 0)
		}, []string{"b_dec.npy", "corrupt .npy header"}},
		{"not npy", func(m map[string][]byte) { m["b_dec.npy"] = []byte("hello world") }, []string{"b_dec.npy", "magic"}},
		{"unexpected array", func(m map[string][]byte) {
			m["W_skip.npy"] = npytest.File("<f4", false, "(1,)", npytest.Float32s(1))
		}, []string{`unexpected array "W_skip.npy"`}},
		{"NaN", func(m map[string][]byte) {
			m["b_enc.npy"] = npytest.File("<f4", false, "(6,)", npytest.Float32s(0, 0, float32(math.NaN()), 0, 0, 0))
		}, []string{"b_enc value 2 is NaN"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "params.npz")
			m := gemmaMembers(s)
			tc.mutate(m)
			writeZip(t, path, false, m)
			_, err := ImportGemmaScope(path)
			wantFileError(t, err, path, tc.want)
		})
	}

	t.Run("not a zip", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "params.npz")
		os.WriteFile(path, []byte("not a zip file at all"), 0o644)
		if _, err := ImportGemmaScope(path); err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "zip") {
			t.Errorf("got %v, want an error naming %s", err, path)
		}
	})
	t.Run("missing", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "params.npz")
		if _, err := ImportGemmaScope(path); err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("got %v, want an error naming %s", err, path)
		}
	})
	t.Run("cut archive", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "params.npz")
		writeZip(t, path, true, gemmaMembers(s))
		b, _ := os.ReadFile(path)
		for _, cut := range []int{len(b) / 3, len(b) / 2, len(b) - 30} {
			os.WriteFile(path, b[:cut], 0o644)
			if _, err := ImportGemmaScope(path); err == nil || !strings.Contains(err.Error(), path) {
				t.Errorf("archive cut at %d of %d bytes: got %v, want an error", cut, len(b), err)
			}
		}
	})
}

// writeSparsify writes a sparsify SAE directory for s: cfg.json as sparsify
// writes it and sae.safetensors with the encoder stored as encoder.weight
// [d_sae, d_in].
func writeSparsify(t *testing.T, dir string, s *SAE, cfgEdit func(map[string]any), extra ...safetensors.Tensor) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := map[string]any{
		"activation": "topk", "expansion_factor": 32, "normalize_decoder": true, "num_latents": s.DSae,
		"k": s.K, "multi_topk": false, "skip_connection": false, "transcode": false, "d_in": s.DIn,
	}
	if cfgEdit != nil {
		cfgEdit(cfg)
	}
	b, _ := json.Marshal(cfg)
	if err := os.WriteFile(filepath.Join(dir, "cfg.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	enc := make([]float32, s.DIn*s.DSae)
	for i := range s.DIn {
		for j := range s.DSae {
			enc[j*s.DIn+i] = s.WEnc[i*s.DSae+j]
		}
	}
	ts := append([]safetensors.Tensor{
		{Name: "encoder.weight", Shape: []int{s.DSae, s.DIn}, Data: enc},
		{Name: "encoder.bias", Shape: []int{s.DSae}, Data: s.BEnc},
		{Name: "W_dec", Shape: []int{s.DSae, s.DIn}, Data: s.WDec},
		{Name: "b_dec", Shape: []int{s.DIn}, Data: s.BDec},
	}, extra...)
	if err := safetensors.Write(filepath.Join(dir, SparsifyWeightsFile), ts, safetensors.F32, nil); err != nil {
		t.Fatal(err)
	}
}

func TestImportSparsify(t *testing.T) {
	const din, dsae, k = 6, 12, 3
	s := testSAE(t, TopK, din, dsae, k, 41)
	root := t.TempDir()
	dir := filepath.Join(root, "layers.4")
	writeSparsify(t, dir, s, nil)
	os.WriteFile(filepath.Join(root, "config.json"), []byte(`{"model": "EleutherAI/pythia-70m", "dataset": "the-pile", "batch_size": 8}`), 0o644)

	got, err := ImportSparsify(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got.Arch != TopK || got.K != k || !got.ApplyBDecToInput || got.DIn != din || got.DSae != dsae {
		t.Fatalf("imported %s k %d b_dec-in %v %dx%d; want topk %d true %dx%d", got.Arch, got.K, got.ApplyBDecToInput, got.DIn, got.DSae, k, din, dsae)
	}
	want := Metadata{ModelName: "EleutherAI/pythia-70m", HookName: "layers.4", HookLayer: 4, Dataset: "the-pile"}
	if got.Metadata != want {
		t.Errorf("metadata %+v, want %+v", got.Metadata, want)
	}

	// sparsify's forward pass by hand: pre = relu((x - b_dec) encoder.weight^T
	// + encoder.bias); keep the k largest; x_hat = Σ f_j W_dec[j] + b_dec.
	x := testRows(15, din, 6)
	n := len(x) / din
	wantF := make([]float32, n*dsae)
	wantX := make([]float32, n*din)
	for r := range n {
		pre := make([]float32, dsae)
		for j := range dsae {
			v := float64(s.BEnc[j])
			for i := range din {
				v += float64(x[r*din+i]-s.BDec[i]) * float64(s.WEnc[i*dsae+j]) // encoder.weight[j][i]
			}
			pre[j] = float32(max(v, 0))
		}
		for range k {
			best := -1
			for j := range dsae {
				if wantF[r*dsae+j] == 0 && pre[j] > 0 && (best < 0 || pre[j] > pre[best]) {
					best = j
				}
			}
			if best >= 0 {
				wantF[r*dsae+best] = pre[best]
				pre[best] = 0
			}
		}
		for i := range din {
			v := float64(s.BDec[i])
			for j := range dsae {
				v += float64(wantF[r*dsae+j]) * float64(s.WDec[j*din+i])
			}
			wantX[r*din+i] = float32(v)
		}
	}
	f, xhat := forward(got, x)
	closeTo(t, "latents", f, wantF, 1e-5, 1e-6)
	closeTo(t, "x_hat", xhat, wantX, 1e-5, 1e-6)

	for _, p := range []string{dir, filepath.Join(dir, SparsifyWeightsFile), filepath.Join(dir, "cfg.json")} {
		if got, err := LoadAny(p); err != nil || got.Arch != TopK || got.K != k {
			t.Errorf("LoadAny(%s): %v", p, err)
		}
	}

	// expansion_factor gives d_sae when num_latents is 0.
	dir2 := filepath.Join(root, "layers.5")
	s2 := testSAE(t, TopK, 2, 8, 2, 42)
	writeSparsify(t, dir2, s2, func(c map[string]any) { c["num_latents"] = 0; c["expansion_factor"] = 4 })
	if got, err := ImportSparsify(dir2); err != nil || got.DSae != 8 {
		t.Errorf("expansion_factor 4: %v, %v; want d_sae 8", err, got)
	}
}

func TestImportSparsifyErrors(t *testing.T) {
	s := testSAE(t, TopK, 4, 8, 2, 51)
	cases := []struct {
		name  string
		edit  func(map[string]any)
		extra []safetensors.Tensor
		file  string
		want  []string
	}{
		{"transcoder", func(c map[string]any) { c["transcode"] = true }, nil, "cfg.json", []string{"transcode"}},
		{"groupmax", func(c map[string]any) { c["activation"] = "groupmax" }, nil, "cfg.json", []string{"groupmax"}},
		{"no k", func(c map[string]any) { delete(c, "k") }, nil, "cfg.json", []string{"k is missing"}},
		{"k too large", func(c map[string]any) { c["k"] = 9 }, nil, "cfg.json", []string{"k is 9"}},
		{"no d_in", func(c map[string]any) { delete(c, "d_in") }, nil, "cfg.json", []string{"d_in is missing"}},
		{"num_latents disagrees", func(c map[string]any) { c["num_latents"] = 16 }, nil, SparsifyWeightsFile,
			[]string{"encoder.weight has shape [8, 4], expected [d_sae 16, d_in 4]"}},
		{"skip connection", nil, []safetensors.Tensor{{Name: "W_skip", Shape: []int{4, 4}, Data: make([]float32, 16)}}, SparsifyWeightsFile, []string{"W_skip"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "layers.0")
			writeSparsify(t, dir, s, tc.edit, tc.extra...)
			_, err := ImportSparsify(dir)
			wantFileError(t, err, filepath.Join(dir, tc.file), tc.want)
		})
	}

	t.Run("untransposed encoder", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "layers.0")
		writeSparsify(t, dir, s, nil)
		ts, _, err := safetensors.Read(filepath.Join(dir, SparsifyWeightsFile))
		if err != nil {
			t.Fatal(err)
		}
		enc := ts["encoder.weight"]
		enc.Shape = []int{4, 8}
		ts["encoder.weight"] = enc
		var list []safetensors.Tensor
		for _, v := range ts {
			list = append(list, v)
		}
		safetensors.Write(filepath.Join(dir, SparsifyWeightsFile), list, safetensors.F32, nil)
		if _, err := ImportSparsify(dir); err == nil || !strings.Contains(err.Error(), "encoder.weight has shape [4, 8], expected [d_sae 8, d_in 4]") {
			t.Errorf("got %v, want a shape error for encoder.weight", err)
		}
	})
}

func TestLoadAny(t *testing.T) {
	root := t.TempDir()
	// SAELens, written by Save.
	s := testSAE(t, Standard, 4, 8, 0, 61)
	lens := filepath.Join(root, "lens")
	if err := Save(lens, s, SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{lens, filepath.Join(lens, SAELensConfigFile), filepath.Join(lens, SAELensWeightsFile)} {
		got, err := LoadAny(p)
		if err != nil || got.Arch != Standard || relErr(got.WEnc, s.WEnc) != 0 {
			t.Errorf("LoadAny(%s): %v", p, err)
		}
	}
	// Nothing recognisable.
	empty := filepath.Join(root, "empty")
	os.Mkdir(empty, 0o755)
	if _, err := LoadAny(empty); err == nil || !strings.Contains(err.Error(), empty) || !strings.Contains(err.Error(), "no SAE found") {
		t.Errorf("empty directory: got %v", err)
	}
	other := filepath.Join(root, "weights.bin")
	os.WriteFile(other, []byte("x"), 0o644)
	if _, err := LoadAny(other); err == nil || !strings.Contains(err.Error(), other) {
		t.Errorf("unknown file: got %v", err)
	}
	missing := filepath.Join(root, "missing")
	if _, err := LoadAny(missing); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing path: got %v", err)
	}
}
