package model

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTokenizerBounds: a tokenizer.json beyond what any published
// tokenizer needs is refused with a one-line error before it is parsed
// (one of 104 MB with 10 M merges used to take 2.4 GB): the file's size,
// then the number of merges.
func TestTokenizerBounds(t *testing.T) {
	// Larger than 64 MiB: a sparse file, refused by its size alone.
	p := writeTokenizerDir(t, []byte(`{"model": {}}`), "")
	if err := os.Truncate(p, maxTokenizerBytes+1); err != nil {
		t.Fatal(err)
	}
	_, err := LoadTokenizerJSON(p)
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("%d bytes: expected at most 64 MiB", maxTokenizerBytes+1)) {
		t.Errorf("oversized tokenizer.json: %v", err)
	}
	// The same for tokenizer_config.json beside a good tokenizer.json.
	good := writeTokenizerDir(t, fixtureJSON(t), "{}")
	cfg := filepath.Join(filepath.Dir(good), "tokenizer_config.json")
	if err := os.Truncate(cfg, maxTokenizerBytes+1); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadTokenizerJSON(good); err == nil || !strings.Contains(err.Error(), "tokenizer config") || !strings.Contains(err.Error(), "expected at most 64 MiB") {
		t.Errorf("oversized tokenizer_config.json: %v", err)
	}

	// More merges than there can be tokens: counted before any is read.
	m := fixtureJSON(t)
	var merges bytes.Buffer
	merges.WriteByte('[')
	for i := range maxMerges + 1 {
		if i > 0 {
			merges.WriteByte(',')
		}
		merges.WriteByte('0')
	}
	merges.WriteByte(']')
	m["model"].(map[string]any)["merges"] = json.RawMessage(merges.Bytes())
	p = writeTokenizerDir(t, m, "")
	_, err = LoadTokenizerJSON(p)
	if err == nil || strings.Contains(err.Error(), "\n") ||
		!strings.Contains(err.Error(), fmt.Sprintf("model.merges: holds %d merges, expected at most %d", maxMerges+1, maxMerges)) {
		t.Errorf("too many merges: %v", err)
	}
}
