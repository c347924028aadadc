package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"

	"github.com/rise-interp/rise/steer"
	"github.com/rise-interp/rise/steer/model"
)

// modelFlags are the flags every command that runs a model shares.
type modelFlags struct {
	model, tokenizer, chat, backend string
	dtype, quant                    string
}

// setPrecision adds --dtype and --quant, the precision the native runtime
// holds the weights in.
func (f *modelFlags) setPrecision(fs *flag.FlagSet) {
	fs.StringVar(&f.dtype, "dtype", "", "hold the model's weight matrices as f32, bf16 or f16 (default: as stored; sums are float32 either way)")
	fs.StringVar(&f.quant, "quant", "", "quantise the weight matrices at load: q8 (8-bit blocks of 32 weights with one scale, as llama.cpp's Q8_0)")
}

// options reads --dtype and --quant.
func (f *modelFlags) options() (model.Options, error) {
	var o model.Options
	if f.dtype != "" {
		d, err := model.ParseDType(f.dtype)
		if err != nil {
			return o, usagef("--dtype: %v", err)
		}
		o.DType, o.SetDType = d, true
	}
	q, err := model.ParseQuant(f.quant)
	if err != nil {
		return o, usagef("--quant: %v", err)
	}
	o.Quant = q
	if q && o.SetDType {
		return o, usagef("give --dtype or --quant, not both: --quant %s holds the weights in its own format", f.quant)
	}
	if (f.dtype != "" || f.quant != "") && f.backend != "" {
		return o, usagef("--dtype and --quant apply to --model, not to --backend %s, which holds its own weights", f.backend)
	}
	return o, nil
}

func (f *modelFlags) set(fs *flag.FlagSet) {
	fs.StringVar(&f.model, "model", "", "the model: a Hugging Face directory (Llama, Qwen2, Qwen3) or a llama2.c checkpoint (required)")
	fs.StringVar(&f.tokenizer, "tokenizer", "", "the tokenizer (default: tokenizer.json in the model directory, or tokenizer.bin / tok<vocab>.bin beside a llama2.c checkpoint)")
	fs.StringVar(&f.chat, "chat", "", "wrap prompts in a chat template: r1 (DeepSeek-R1-Distill; DeepSeek's turn tokens), chatml (Qwen2 instruct), qwen3 (Qwen3, thinking) or qwen3-nothink")
	fs.StringVar(&f.backend, "backend", "", "run the model on a backend server (rise-backend/1 protocol) at this URL instead of --model")
	f.setPrecision(fs)
}

// load opens the backend the flags name: the native runtime on --model, or
// the server at --backend.
func (f *modelFlags) load(ctx context.Context) (steer.Backend, error) {
	if f.chat != "" {
		if _, err := model.ChatPrompt(f.chat, ""); err != nil {
			return nil, usagef("--chat: %v", err)
		}
	}
	o, err := f.options()
	if err != nil {
		return nil, err
	}
	switch {
	case f.model != "" && f.backend != "":
		return nil, usagef("give --model or --backend, not both")
	case f.backend != "":
		return steer.Dial(ctx, f.backend)
	case f.model == "":
		return nil, usagef("--model (or --backend) is required")
	}
	m, tok, err := model.LoadWith(f.model, f.tokenizer, o)
	if err != nil {
		return nil, err
	}
	return &steer.Native{Model: m, Tokenizer: tok}, nil
}

// wrap applies the chat template to a prompt; special tokens are then
// recognised in it.
func (f *modelFlags) wrap(p string) (string, bool) {
	if f.chat == "" {
		return p, false
	}
	w, err := model.ChatPrompt(f.chat, p)
	if err != nil {
		// load has checked the name.
		return p, false
	}
	return w, true
}

// loadSteered opens the backend, like load, and reads and resolves the
// steering spec at specPath, when one is given, for its model.
func (f *modelFlags) loadSteered(ctx context.Context, specPath string) (steer.Backend, []steer.Vector, error) {
	b, err := f.load(ctx)
	if err != nil || specPath == "" {
		return b, nil, err
	}
	spec, err := steer.ReadSpec(specPath)
	if err != nil {
		return nil, nil, err
	}
	info := b.Info()
	vs, err := spec.Resolve(info.DModel, info.Layers)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", specPath, err)
	}
	return b, vs, nil
}

// samplingFlags are the flags of how a command generates: --max-tokens,
// --temperature, --top-p and --seed.
type samplingFlags struct {
	maxTokens         int
	temperature, topP float64
	seed              uint64
}

// set declares the flags; the commands say in their own words what the
// token limit and the seed apply to.
func (f *samplingFlags) set(fs *flag.FlagSet, maxTokensUsage, seedUsage string) {
	fs.IntVar(&f.maxTokens, "max-tokens", 256, maxTokensUsage)
	fs.Float64Var(&f.temperature, "temperature", 0, "sampling temperature (0: greedy)")
	fs.Float64Var(&f.topP, "top-p", 1, "nucleus sampling mass")
	fs.Uint64Var(&f.seed, "seed", 1, seedUsage)
}

// options are the generation options the flags give.
func (f *samplingFlags) options() model.GenerateOptions {
	return model.GenerateOptions{MaxTokens: f.maxTokens, Temperature: f.temperature, TopP: f.topP, Seed: f.seed}
}

func init() {
	var (
		mf                modelFlags
		sf                samplingFlags
		prompt, steerPath string
		asJSON, noStop    bool
	)
	register(&command{
		name:    "generate",
		noArgs:  true,
		summary: "generate text with a model, optionally steered",
		usage:   "--model PATH [--tokenizer PATH] --prompt TEXT [--max-tokens N] [--temperature T] [--top-p P] [--seed S] [--steer SPEC.json] [--chat r1|chatml|qwen3|qwen3-nothink] [--json]",
		help: `Runs a Llama-family model natively (llama2.c checkpoints; Hugging Face
Llama, Qwen2 and Qwen3 directories) and prints the text it generates after the
prompt. An empty prompt starts from BOS alone. Temperature 0 (the default)
decodes greedily; otherwise tokens are drawn with the seed, from the top-p
nucleus.

--steer SPEC.json changes the residual stream while generating:

	{"vectors": [{"source": "sae:S.topk#5", "layer": 2, "op": "add",
	              "strength": 4, "positions": "all"}]}

source is npy:PATH, sae:SAE_DIR#FEATURE or atlas:ATLAS.json#BEHAVIOUR; layer
L is the output of block L (from 0); op is add, scale, clamp or ablate;
positions is all, prompt, generated or step_boundary.

Example:

	rise generate --model ../shared/data/stories260K/stories260K.bin --prompt "" --max-tokens 40`,
		setFlags: func(fs *flag.FlagSet) {
			mf.set(fs)
			fs.StringVar(&prompt, "prompt", "", "the prompt (empty: start from BOS)")
			sf.set(fs, "tokens to generate at most", "random seed")
			fs.StringVar(&steerPath, "steer", "", "a steering spec (JSON)")
			fs.BoolVar(&asJSON, "json", false, "print the generation as JSON (tokens, text, why it stopped)")
			fs.BoolVar(&noStop, "no-stop", false, "keep going past the end-of-sequence token")
		},
		run: func(ctx context.Context, e *env, fs *flag.FlagSet) error {
			if sf.maxTokens < 1 {
				return usagef("--max-tokens: expected at least 1, found %d", sf.maxTokens)
			}
			b, vs, err := mf.loadSteered(ctx, steerPath)
			if err != nil {
				return err
			}
			p, special := mf.wrap(prompt)
			o := sf.options()
			o.Hooks, o.NoStop, o.Special = steer.Vectors(vs), noStop, special
			gens, err := b.Generate(ctx, []string{p}, o)
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(e.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(gens[0])
			}
			fmt.Fprintln(e.stdout, gens[0].Text)
			return nil
		},
	})
}
