package model

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/rise-interp/rise/internal/shared"
)

func TestChatPrompts(t *testing.T) {
	// The DeepSeek-R1-Distill template for one user turn with
	// add_generation_prompt: bos_token, '<｜User｜>' + content, then
	// '<｜Assistant｜><think>\n'.
	if got, want := R1ChatPrompt("What is 2+2?"), "<｜begin▁of▁sentence｜><｜User｜>What is 2+2?<｜Assistant｜><think>\n"; got != want {
		t.Errorf("R1ChatPrompt = %q, want %q", got, want)
	}
	if got, want := ChatMLPrompt("Hi\nthere"), "<|im_start|>user\nHi\nthere<|im_end|>\n<|im_start|>assistant\n"; got != want {
		t.Errorf("ChatMLPrompt = %q, want %q", got, want)
	}
}

// TestQwen3ChatPrompt follows the Qwen3 template's generation prompt: the
// ChatML turn, then nothing with enable_thinking (the default) and an empty
// reasoning block without it.
func TestQwen3ChatPrompt(t *testing.T) {
	for _, tc := range []struct {
		name, want string
	}{
		{"qwen3", "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n"},
		{"qwen3-nothink", "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"},
		{"r1", R1ChatPrompt("What is 2+2?")},
		{"chatml", ChatMLPrompt("What is 2+2?")},
	} {
		got, err := ChatPrompt(tc.name, "What is 2+2?")
		if err != nil || got != tc.want {
			t.Errorf("ChatPrompt(%q) = %q, %v; want %q", tc.name, got, err, tc.want)
		}
	}
	if _, err := ChatPrompt("vicuna", "hi"); err == nil || !strings.Contains(err.Error(), `"vicuna"`) || !strings.Contains(err.Error(), "qwen3") {
		t.Errorf("unknown template: %v", err)
	}
	// The Qwen3 fixture's tokenizer reads the turn markers as special tokens.
	tok, err := LoadTokenizerJSON(filepath.Join(shared.Root(t), "testdata", "hf", "qwen3", "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	p := Qwen3ChatPrompt("hi", true)
	ids := tok.Encode(p, false, true)
	count := func(id int) (n int) {
		for _, x := range ids {
			if x == id {
				n++
			}
		}
		return n
	}
	// <|im_start|> 374 and <|im_end|> 375 in make_golden.py's vocabulary.
	if ids[0] != 374 || count(374) != 2 || count(375) != 1 || tok.Decode(ids, true) != p {
		t.Errorf("ids %v: want <|im_start|> first, twice, <|im_end|> once, decoding to %q", ids, p)
	}
}
