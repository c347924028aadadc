package model

import (
	"fmt"
	"sort"
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

// chatTemplates are the templates ChatTemplate knows, by the name that
// --chat and the API's "chat" take.
var chatTemplates = map[string]func(string) string{
	"r1":     R1ChatPrompt,
	"chatml": ChatMLPrompt,
}

// ChatTemplate returns the chat template called name, as a function from
// a user message to the model's prompt, or nil for "" (no template). The
// prompts it makes hold special tokens: encode them with special true.
func ChatTemplate(name string) (func(string) string, error) {
	if name == "" {
		return nil, nil
	}
	if t, ok := chatTemplates[name]; ok {
		return t, nil
	}
	names := make([]string, 0, len(chatTemplates))
	for n := range chatTemplates {
		names = append(names, n)
	}
	sort.Strings(names)
	return nil, fmt.Errorf("expected %s, found %q", strings.Join(names, " or "), name)
}
