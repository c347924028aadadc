package model

import (
	"fmt"
	"os"
	"path/filepath"
)

// Load opens a model and its tokenizer: a Hugging Face directory
// (config.json, *.safetensors, and tokenizer.json unless tokenizer names
// another file) or a llama2.c checkpoint (with tokenizer, or else
// tokenizer.bin or tok<vocab>.bin beside it).
func Load(model, tokenizer string) (*Model, Tokenizer, error) {
	return LoadWith(model, tokenizer, Options{})
}

// LoadWith is Load with a choice of the weights' precision.
func LoadWith(model, tokenizer string, o Options) (*Model, Tokenizer, error) {
	st, err := os.Stat(model)
	if err != nil {
		return nil, nil, err
	}
	var m *Model
	if st.IsDir() {
		if _, err := os.Stat(filepath.Join(model, "config.json")); err != nil {
			return nil, nil, fmt.Errorf("%s: expected a Hugging Face model directory with config.json, or a llama2.c checkpoint file", model)
		}
		if m, err = LoadHFWith(model, o); err != nil {
			return nil, nil, err
		}
		if tokenizer == "" {
			tokenizer = filepath.Join(model, "tokenizer.json")
		}
	} else {
		if m, err = LoadLlama2C(model); err != nil {
			return nil, nil, err
		}
		o.apply(m)
		if tokenizer == "" {
			dir := filepath.Dir(model)
			for _, name := range []string{"tokenizer.bin", fmt.Sprintf("tok%d.bin", m.Vocab), "tok.bin"} {
				if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
					tokenizer = filepath.Join(dir, name)
					break
				}
			}
			if tokenizer == "" {
				return nil, nil, fmt.Errorf("%s: no tokenizer given and none beside it (tokenizer.bin, tok%d.bin or tok.bin): name one with --tokenizer", model, m.Vocab)
			}
		}
	}
	tok, err := LoadTokenizer(tokenizer, m.Vocab)
	if err != nil {
		return nil, nil, err
	}
	if tok.VocabSize() > m.Vocab {
		return nil, nil, fmt.Errorf("%s has %d tokens but the model %s only %d embeddings: the tokenizer does not fit the model", tokenizer, tok.VocabSize(), model, m.Vocab)
	}
	m.Name = model
	return m, tok, nil
}

// LoadModel opens a model without its tokenizer: a Hugging Face directory
// or a llama2.c checkpoint.
func LoadModel(path string) (*Model, error) { return LoadModelWith(path, Options{}) }

// LoadModelWith is LoadModel with a choice of the weights' precision.
func LoadModelWith(path string, o Options) (*Model, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if st.IsDir() {
		return LoadHFWith(path, o)
	}
	m, err := LoadLlama2C(path)
	if err != nil {
		return nil, err
	}
	o.apply(m)
	return m, nil
}

// LoadTokenizer opens a tokenizer by its file: tokenizer.json (Hugging
// Face byte-level BPE) or a llama2.c tok*.bin of vocab tokens.
func LoadTokenizer(path string, vocab int) (Tokenizer, error) {
	if filepath.Ext(path) == ".json" {
		return LoadTokenizerJSON(path)
	}
	return LoadLlama2CTokenizer(path, vocab)
}
