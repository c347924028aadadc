package sae

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rise-interp/rise/internal/jsontest"
)

// pythonTorch is Debian's python3, which has torch (a pyenv python on PATH
// may not).
const pythonTorch = "/usr/bin/python3"

// r1Expected is what testdata/import_r1/write_saes.py computed with the
// releases' own formulas.
type r1Expected struct {
	X              [][]float32 `json:"x"`
	DictLearn      [][]float32 `json:"dictlearn"`
	LlamaScope     [][]float32 `json:"llamascope"`
	LlamaScopeXHat [][]float32 `json:"llamascope_xhat"`
}

// r1Fixture is the committed output of testdata/import_r1/write_saes.py.
const r1Fixture = "testdata/import_r1/out"

// readR1Expected reads what the writer computed for the SAEs in dir.
func readR1Expected(t *testing.T, dir string) r1Expected {
	t.Helper()
	var exp r1Expected
	jsontest.ReadFile(t, filepath.Join(dir, "expected.json"), &exp)
	return exp
}

// writeR1SAEs runs the independent writer into a temporary directory and
// returns it. It skips where python3 with torch is missing.
func writeR1SAEs(t *testing.T) string {
	t.Helper()
	if out, err := exec.Command(pythonTorch, "-c", "import torch").CombinedOutput(); err != nil {
		t.Skipf("skipping: %s cannot import torch (%v: %s); the committed files are tested instead", pythonTorch, err, strings.TrimSpace(string(out)))
	}
	dir := t.TempDir()
	if out, err := exec.Command(pythonTorch, "testdata/import_r1/write_saes.py", dir).CombinedOutput(); err != nil {
		t.Fatalf("write_saes.py: %v\n%s", err, out)
	}
	return dir
}

// checkLatents encodes exp.X with s and compares with want.
func checkLatents(t *testing.T, s *SAE, x, want [][]float32) {
	t.Helper()
	fired := 0
	for r, row := range x {
		f := make([]float32, s.DSae)
		s.Encode(row, f)
		for j := range f {
			if math.Abs(float64(f[j]-want[r][j])) > 1e-5*max(1, math.Abs(float64(want[r][j]))) {
				t.Fatalf("row %d latent %d: %v, the original formula gives %v (row %v)", r, j, f[j], want[r][j], f)
			}
			if want[r][j] != 0 {
				fired++
			}
		}
	}
	// The rows must exercise the threshold: some latents fire, some not.
	if total := len(x) * s.DSae; fired == 0 || fired == total {
		t.Fatalf("%d of %d latents fire: the fixture does not test the threshold", fired, total)
	}
}

// TestImportR1Layouts imports SAEs in the layouts of dictionary_learning
// (BatchTopK, ae.pt and ae.safetensors) and lm-saes (Llama-Scope-R1-Distill)
// written by an independent Python script (testdata/import_r1/write_saes.py,
// whose output is committed in testdata/import_r1/out), and checks that
// they encode as those projects' own formulas do; broken variants are
// refused.
func TestImportR1Layouts(t *testing.T) {
	exp := readR1Expected(t, r1Fixture)
	t.Run("dictionary_learning", func(t *testing.T) { testImportDictionaryLearning(t, r1Fixture, exp) })
	t.Run("llama_scope", func(t *testing.T) { testImportLlamaScope(t, r1Fixture, exp) })
	t.Run("broken", func(t *testing.T) { testImportR1Broken(t, r1Fixture) })
	// Where torch is at hand, the files are written afresh by the script
	// (the committed ones are its output) and imported the same way.
	t.Run("regenerated", func(t *testing.T) {
		dir := writeR1SAEs(t)
		fresh := readR1Expected(t, dir)
		testImportDictionaryLearning(t, dir, fresh)
		testImportLlamaScope(t, dir, fresh)
	})
}

func testImportDictionaryLearning(t *testing.T, dir string, exp r1Expected) {
	for _, sub := range []string{"dictlearn_pt", "dictlearn_mod", "dictlearn_st"} {
		t.Run(sub, func(t *testing.T) {
			s, err := LoadAny(filepath.Join(dir, sub))
			if err != nil {
				t.Fatal(err)
			}
			if s.Arch != BatchTopK || s.K != 3 || !s.ApplyBDecToInput || s.Metadata.HookLayer != 6 {
				t.Fatalf("imported %s k=%d centre=%v layer=%d, expected batchtopk k=3 centre=true layer 6", s.Arch, s.K, s.ApplyBDecToInput, s.Metadata.HookLayer)
			}
			checkLatents(t, s, exp.X, exp.DictLearn)
		})
	}
}

func testImportLlamaScope(t *testing.T, dir string, exp r1Expected) {
	s, err := LoadAny(filepath.Join(dir, "llamascope"))
	if err != nil {
		t.Fatal(err)
	}
	if s.Arch != JumpReLU || s.InputScale != 1 || s.Metadata.HookLayer != 15 {
		t.Fatalf("imported %s scale %v layer %d, expected jumprelu with the scale folded in, layer 15", s.Arch, s.InputScale, s.Metadata.HookLayer)
	}
	checkLatents(t, s, exp.X, exp.LlamaScope)
	// The reconstruction comes back in raw units.
	for r, row := range exp.X {
		f := make([]float32, s.DSae)
		xhat := make([]float32, s.DIn)
		s.Encode(row, f)
		s.Decode(f, xhat)
		if e := relErr(xhat, exp.LlamaScopeXHat[r]); e > 1e-5 {
			t.Fatalf("row %d: reconstruction %v, lm-saes gives %v (relative error %g)", r, xhat, exp.LlamaScopeXHat[r], e)
		}
	}
}

func testImportR1Broken(t *testing.T, dir string) {
	edit := func(t *testing.T, sub, file string, change func(map[string]any)) string {
		t.Helper()
		d := t.TempDir()
		ents, _ := os.ReadDir(filepath.Join(dir, sub))
		for _, e := range ents {
			b, err := os.ReadFile(filepath.Join(dir, sub, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			if e.Name() == file {
				var m map[string]any
				if err := json.Unmarshal(b, &m); err != nil {
					t.Fatal(err)
				}
				change(m)
				b, _ = json.Marshal(m)
			}
			if err := os.WriteFile(filepath.Join(d, e.Name()), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return d
	}
	cases := []struct {
		name, sub, want string
		change          func(map[string]any)
	}{
		{"transcoder", "llamascope", "transcoder", func(m map[string]any) { m["hook_point_out"] = "blocks.15.hook_mlp_out" }},
		{"token-wise", "llamascope", `norm_activation "token-wise"`, func(m map[string]any) { m["norm_activation"] = "token-wise" }},
		{"width", "llamascope", "d_model 7", func(m map[string]any) { m["d_model"] = 7 }},
		{"dict class", "dictlearn_st", `dict_class is "AutoEncoderTopK"`, func(m map[string]any) {
			m["trainer"].(map[string]any)["dict_class"] = "AutoEncoderTopK"
		}},
		{"k", "dictlearn_pt", "trainer.k is 4", func(m map[string]any) { m["trainer"].(map[string]any)["k"] = 4 }},
		{"dict size", "dictlearn_pt", "trainer.dict_size is 11", func(m map[string]any) { m["trainer"].(map[string]any)["dict_size"] = 11 }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := edit(t, c.sub, "config.json", c.change)
			_, err := LoadAny(d)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, expected one that says %q", err, c.want)
			}
		})
	}
	t.Run("storage shorter than its claim", func(t *testing.T) {
		// Rewrite ae.pt with every tensor storage cut to half: the pickle
		// still claims the full sizes, which must be refused before any
		// allocation, not read past the data.
		d := edit(t, "dictlearn_pt", "", nil)
		p := filepath.Join(d, DictLearnTorchFile)
		zr, err := zip.OpenReader(p)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		zw := zip.NewWriter(&buf)
		for _, m := range zr.File {
			rc, _ := m.Open()
			b, _ := io.ReadAll(rc)
			rc.Close()
			if strings.Contains(m.Name, "/data/") {
				b = b[:len(b)/2]
			}
			w, _ := zw.CreateHeader(&zip.FileHeader{Name: m.Name, Method: zip.Store})
			w.Write(b)
		}
		zr.Close()
		zw.Close()
		os.WriteFile(p, buf.Bytes(), 0o644)
		if _, err := LoadAny(d); err == nil || !strings.Contains(err.Error(), "its archive member holds") {
			t.Fatalf("error %v, expected a refused storage size", err)
		}
	})
	t.Run("truncated ae.pt", func(t *testing.T) {
		d := edit(t, "dictlearn_pt", "", nil)
		p := filepath.Join(d, DictLearnTorchFile)
		b, _ := os.ReadFile(p)
		os.WriteFile(p, b[:len(b)/2], 0o644)
		if _, err := LoadAny(d); err == nil || !strings.Contains(err.Error(), p) {
			t.Fatalf("error %v, expected one naming %s", err, p)
		}
	})
}

// FuzzReadTorchStateDict feeds broken PyTorch checkpoints to the ae.pt
// reader, seeded with the tiny dictionary_learning checkpoint written by
// testdata/import_r1/write_saes.py: every input must end in tensors or an
// error, without a crash, a hang or an allocation the file does not hold.
func FuzzReadTorchStateDict(f *testing.F) {
	seed, err := os.ReadFile(filepath.Join(r1Fixture, "dictlearn_pt", DictLearnTorchFile))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add(seed[:len(seed)/2])
	f.Add([]byte("PK\x03\x04"))
	f.Fuzz(func(t *testing.T, b []byte) {
		ts, err := decodeTorchStateDict("ae.pt", bytes.NewReader(b), int64(len(b)))
		if err == nil {
			for name, x := range ts {
				n := 1
				for _, d := range x.shape {
					n *= d
				}
				if n != len(x.data) {
					t.Fatalf("tensor %s: shape %v but %d values", name, x.shape, len(x.data))
				}
			}
		}
	})
}

// TestScanPickle checks the opcode walk on pickles written by hand from
// the opcodes' definitions (Python's pickletools): lengths past the data
// are refused before an unpickler would allocate by them.
func TestScanPickle(t *testing.T) {
	cases := []struct {
		name string
		b    []byte
		want string // "" for a pickle that passes
	}{
		{"empty dict", []byte("\x80\x02}q\x00."), ""},
		{"unicode", []byte("\x80\x02X\x03\x00\x00\x00abcq\x00."), ""},
		{"global", []byte("\x80\x02ctorch._utils\n_rebuild_tensor_v2\nq\x00."), ""},
		{"unicode claims 4 GiB", []byte("\x80\x02X\xff\xff\xff\xffabc."), "claims 4294967295 bytes"},
		{"bytes8 claims 2^63", []byte("\x80\x04\x8e\x00\x00\x00\x00\x00\x00\x00\x80ab."), "claims 9223372036854775808 bytes"},
		{"no stop", []byte("\x80\x02}"), "no STOP"},
		{"unknown opcode", []byte("\x80\x02\xff."), "unknown pickle opcode 0xff"},
		{"global cut", []byte("\x80\x02ctorch"), "no end of line"},
	}
	for _, c := range cases {
		err := scanPickle(c.b)
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%s: %v, expected %q", c.name, err, c.want)
		}
	}
}
