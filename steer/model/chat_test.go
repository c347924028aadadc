package model

import "testing"

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
