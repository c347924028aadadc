// Package model is rise's language-model runtime in pure Go: Llama-family
// decoders (Llama 2/3 and llama2.c checkpoints, Qwen2, Qwen3; RoPE plain or
// scaled the linear, llama3 or yarn way) loaded from llama2.c files or
// Hugging Face directories (config.json, safetensors, tokenizer.json), the
// llama2.c and byte-level BPE tokenizers, chat templates, a batched forward
// pass with a key/value cache, and generation (greedy or sampled). The
// architectures differ by switches of the one forward pass (q/k/v biases,
// per-head q/k norms, RoPE layout and scaling).
//
// The runtime knows nothing of steering or SAEs: it calls a Hook after
// every block with the residual stream of the rows being run, and
// generation takes a HookFactory that makes one. Package steer builds
// steering hooks from its vectors; capture and confidence learning use
// Forward, ForwardFrom, Resume, Sequence.KV and Rope.
package model
