package model

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rise-interp/rise/internal/shared"
)

// copyDir copies the files of a fixture directory.
func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644)
	}
	return dst
}

// TestBrokenModels: damaged or foreign model files give errors that say
// what was expected and what was found, never a panic.
func TestBrokenModels(t *testing.T) {
	stories := shared.Data(t, "stories260K/stories260K.bin")
	raw, err := os.ReadFile(stories)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, b, 0o644)
		return p
	}
	v2 := append([]byte(nil), raw...)
	binary.LittleEndian.PutUint32(v2[0:], llama2cMagic)
	binary.LittleEndian.PutUint32(v2[4:], 2)
	absurd := append([]byte(nil), raw...)
	binary.LittleEndian.PutUint32(absurd[0:], 1<<30)
	for _, tc := range []struct {
		name, path, want string
	}{
		{"truncated", write("cut.bin", raw[:len(raw)-100]), "expected 1"},
		{"tiny", write("tiny.bin", raw[:5]), "expected a llama2.c checkpoint"},
		{"header only", write("head.bin", raw[:20]), "truncated header"},
		{"version 2", write("v2.bin", v2), "version 2"},
		{"absurd dim", write("absurd.bin", absurd), "not a llama2.c checkpoint"},
		{"trailing bytes", write("long.bin", append(append([]byte(nil), raw...), 0, 0, 0, 0)), "expected"},
	} {
		if _, err := LoadLlama2C(tc.path); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error mentioning %q", tc.name, err, tc.want)
		}
	}

	fixture := filepath.Join(shared.Root(t), "testdata", "hf", "llama")
	edit := func(name string, change func(d string)) {
		t.Helper()
		d := copyDir(t, fixture)
		change(d)
		if _, _, err := Load(d, ""); err == nil {
			t.Errorf("%s: loaded", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
	setConfig := func(d, from, to string) {
		p := filepath.Join(d, "config.json")
		b, _ := os.ReadFile(p)
		if !strings.Contains(string(b), from) {
			t.Fatalf("config.json lacks %q", from)
		}
		os.WriteFile(p, []byte(strings.Replace(string(b), from, to, 1)), 0o644)
	}
	edit("unknown architecture", func(d string) { setConfig(d, `"model_type": "llama"`, `"model_type": "gpt2"`) })
	edit("rope scaling", func(d string) { setConfig(d, `"rope_scaling": null`, `"rope_scaling": {"type": "yarn"}`) })
	edit("wrong width", func(d string) { setConfig(d, `"hidden_size": 64`, `"hidden_size": 96`) })
	edit("bad json", func(d string) { os.WriteFile(filepath.Join(d, "config.json"), []byte("{"), 0o644) })
	edit("no weights", func(d string) { os.Remove(filepath.Join(d, "model.safetensors")) })
	edit("truncated weights", func(d string) {
		p := filepath.Join(d, "model.safetensors")
		b, _ := os.ReadFile(p)
		os.WriteFile(p, b[:len(b)/2], 0o644)
	})
	edit("no tokenizer", func(d string) { os.Remove(filepath.Join(d, "tokenizer.json")) })
	edit("bigger vocabulary", func(d string) { setConfig(d, `"vocab_size": 377`, `"vocab_size": 300`) })

	// A tokenizer that does not fit its model.
	if _, _, err := Load(filepath.Join(fixture), shared.Data(t, "stories260K/tok512.bin")); err == nil {
		t.Error("a 512-token tokenizer was accepted for a 377-token model")
	} else {
		t.Logf("tokenizer that does not fit: %v", err)
	}
}
