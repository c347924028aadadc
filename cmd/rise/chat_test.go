package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rise-interp/rise/internal/shared"
)

// TestGenerateQwen3Chat runs the Qwen3 fixture with its chat template: the
// prompt is the Qwen3 turn, read with its special tokens.
func TestGenerateQwen3Chat(t *testing.T) {
	dir := filepath.Join(shared.Root(t), "testdata", "hf", "qwen3")
	for _, tc := range []struct{ chat, tail string }{
		{"qwen3", "<|im_start|>assistant\n"},
		{"qwen3-nothink", "<|im_start|>assistant\n<think>\n\n</think>\n\n"},
	} {
		code, stdout, stderr := runRise(t, "generate", "--model", dir, "--chat", tc.chat, "--prompt", "hi", "--max-tokens", "3", "--json")
		if code != 0 {
			t.Fatalf("--chat %s: exit %d: %s", tc.chat, code, stderr)
		}
		var g struct {
			Prompt       string `json:"prompt"`
			PromptTokens []int  `json:"prompt_tokens"`
			Tokens       []int  `json:"tokens"`
		}
		if err := json.Unmarshal([]byte(stdout), &g); err != nil {
			t.Fatalf("--chat %s: %v: %s", tc.chat, err, stdout)
		}
		if !strings.HasPrefix(g.Prompt, "<|im_start|>user\nhi<|im_end|>\n") || !strings.HasSuffix(g.Prompt, tc.tail) {
			t.Errorf("--chat %s: prompt %q", tc.chat, g.Prompt)
		}
		// <|im_start|> is 374 in the fixture's vocabulary: read as one token.
		if len(g.PromptTokens) == 0 || g.PromptTokens[0] != 374 || len(g.Tokens) != 3 {
			t.Errorf("--chat %s: prompt tokens %v, tokens %v", tc.chat, g.PromptTokens, g.Tokens)
		}
	}
	if code, _, stderr := runRise(t, "generate", "--model", dir, "--chat", "qwen", "--prompt", "hi"); code != 2 || !strings.Contains(stderr, "qwen3") {
		t.Errorf("--chat qwen: exit %d, %q; want 2 and the known templates", code, stderr)
	}
}
