//go:build unix

package steer

import (
	"path/filepath"
	"testing"

	"github.com/rise-interp/rise/internal/fifotest"
	"github.com/rise-interp/rise/internal/inputerr"
	"github.com/rise-interp/rise/steer/model"
)

// TestNamedPipesRefused: a named pipe with no writer given as a steering
// spec, a prompts file, a vector, an atlas, a llama2.c checkpoint or its
// tokenizer, a Hugging Face model's config.json or a tokenizer.json is
// refused at once, naming what it is, instead of blocking the open forever.
func TestNamedPipesRefused(t *testing.T) {
	fifo := fifotest.Make(t, filepath.Join(t.TempDir(), "pipe"))
	hf := t.TempDir()
	fifotest.Make(t, filepath.Join(hf, "config.json"))
	for name, read := range map[string]func() error{
		"spec":           func() error { _, err := ReadSpec(fifo); return err },
		"prompts":        func() error { _, err := ReadPrompts(fifo); return err },
		"vector":         func() error { _, err := ReadVectorsNpyFile(fifo); return err },
		"confidence":     func() error { _, err := LoadDirection("confidence:" + fifo); return err },
		"atlas":          func() error { _, err := LoadDirection("atlas:" + fifo + "#reflection"); return err },
		"checkpoint":     func() error { _, err := model.LoadLlama2C(fifo); return err },
		"tokenizer":      func() error { _, err := model.LoadLlama2CTokenizer(fifo, 512); return err },
		"hf config":      func() error { _, err := model.LoadHF(hf); return err },
		"tokenizer.json": func() error { _, err := model.LoadTokenizerJSON(fifo); return err },
	} {
		err := fifotest.Refused(t, name, read)
		if name == "spec" || name == "prompts" || name == "confidence" {
			if !inputerr.Is(err) {
				t.Errorf("%s: %v is not marked as the caller's", name, err)
			}
		}
	}
}
