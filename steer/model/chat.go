package model

import (
	"fmt"
	"strings"
)

// R1ChatPrompt returns the prompt that the chat template of the
// DeepSeek-R1-Distill models (deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B
// and its Qwen and Llama siblings) renders for one user turn with the
// generation prompt: the BOS token, "<｜User｜>", the message,
// "<｜Assistant｜>" and the opening "<think>\n" of the reasoning block.
//
// The template in the model's tokenizer_config.json is, for this case,
//
//	{{bos_token}}{{ns.system_prompt}} ... {{'<｜User｜>' + message['content']}}
//	... {% if add_generation_prompt and not ns.is_tool %}{{'<｜Assistant｜><think>\n'}}{% endif %}
//
// with bos_token "<｜begin▁of▁sentence｜>" and an empty system prompt. The
// BOS is part of the text, so encode the result with bos false and special
// true: Encode(R1ChatPrompt(msg), false, true).
func R1ChatPrompt(user string) string {
	return "<｜begin▁of▁sentence｜><｜User｜>" + user + "<｜Assistant｜><think>\n"
}

// ChatMLPrompt returns the ChatML prompt of the Qwen2 instruct models for
// one user turn with the generation prompt:
// "<|im_start|>user\n" + user + "<|im_end|>\n<|im_start|>assistant\n".
// No system turn is written: the Qwen2-Instruct template would insert a
// default one ("You are a helpful assistant.") before the user turn, and
// callers that want it prepend it themselves. Encode the result with
// special true.
func ChatMLPrompt(user string) string {
	return "<|im_start|>user\n" + user + "<|im_end|>\n<|im_start|>assistant\n"
}

// Qwen3ChatPrompt returns the prompt that the chat template of the Qwen3
// models (Qwen/Qwen3-0.6B to -32B) renders for one user turn with the
// generation prompt: "<|im_start|>user\n" + user +
// "<|im_end|>\n<|im_start|>assistant\n". With thinking (the template's
// default, enable_thinking true) nothing follows: the model opens its
// "<think>\n" reasoning block itself. Without thinking the template
// closes an empty block, "<think>\n\n</think>\n\n", so that the model
// answers at once. The template writes no default system turn. Encode the
// result with special true.
//
// DeepSeek-R1-0528-Qwen3-8B is a Qwen3 with DeepSeek's turn tokens
// (<｜User｜>, <｜Assistant｜>) rather than ChatML: R1ChatPrompt writes
// those, and opens "<think>\n" as the R1-Distill template does, which the
// 0528 template may leave to the model.
func Qwen3ChatPrompt(user string, thinking bool) string {
	p := ChatMLPrompt(user)
	if !thinking {
		p += "<think>\n\n</think>\n\n"
	}
	return p
}

// ChatTemplates are the names ChatPrompt knows, for flags and requests.
var ChatTemplates = []string{"r1", "chatml", "qwen3", "qwen3-nothink"}

// ChatPrompt renders one user turn with the named chat template: "r1"
// (DeepSeek-R1-Distill, R1ChatPrompt), "chatml" (Qwen2 instruct,
// ChatMLPrompt), "qwen3" (Qwen3 with thinking) or "qwen3-nothink" (Qwen3
// without). Encode the result with special true.
func ChatPrompt(template, user string) (string, error) {
	switch template {
	case "r1":
		return R1ChatPrompt(user), nil
	case "chatml":
		return ChatMLPrompt(user), nil
	case "qwen3":
		return Qwen3ChatPrompt(user, true), nil
	case "qwen3-nothink":
		return Qwen3ChatPrompt(user, false), nil
	}
	return "", fmt.Errorf("chat template: expected one of %s, found %q", strings.Join(ChatTemplates, ", "), template)
}
