package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"time"

	"github.com/rise-interp/rise/steer"
	"github.com/rise-interp/rise/web"
)

func init() {
	var (
		mf          modelFlags
		addr, token string
	)
	register(&command{
		name:    "backend",
		noArgs:  true,
		summary: "serve a model over the rise-backend/1 HTTP protocol (generate, steer, capture)",
		usage:   "--model PATH [--tokenizer PATH] [--addr 127.0.0.1:8000]",
		help: `Serves the native runtime on a model over the rise-backend/1 protocol, the
one every model command and rise serve speak with --backend URL:

	GET  /v1/info      the model: protocol, name, arch, layers, d_model, vocab, max_seq
	POST /v1/generate  {"prompts", "max_tokens", "temperature", "top_p", "seed",
	                    "special", "vectors": [{"direction", "layer", "op", "strength",
	                    "positions"}], "default"} → {"generations", "default"}
	POST /v1/capture   {"traces", "layers", "delimiter", "special"} → JSON lines, one
	                    per trace {"trace", "steps", "rows": {"L": [...]}}, then {"done": true}
	POST /v1/confidence {"w_dec", "d_sae", "layer", "traces", "iters", "batch", "lr",
	                    "states", "seed"} → {"scores", "top_columns", "vector", "norm", ...}
	POST /v1/entropy   {"traces", "vectors"} → {"entropy", "states"}

Errors are 4xx or 5xx with {"error": "..."}. The reference server for GPU
machines (steer/remote/rise_backend.py, PyTorch + transformers) speaks the
same protocol.

Example:

	rise backend --model ../shared/data/stories260K/stories260K.bin --addr 127.0.0.1:8000
	rise generate --backend http://127.0.0.1:8000 --prompt "" --max-tokens 40`,
		setFlags: func(fs *flag.FlagSet) {
			fs.StringVar(&mf.model, "model", "", "the model: a Hugging Face directory (Llama, Qwen2) or a llama2.c checkpoint (required)")
			fs.StringVar(&mf.tokenizer, "tokenizer", "", "the tokenizer, when it is not beside the model")
			mf.setPrecision(fs)
			fs.StringVar(&addr, "addr", "127.0.0.1:8000", "HOST:PORT to listen on")
			fs.StringVar(&token, "token", "", "an access token every request must carry as \"Authorization: Bearer TOKEN\" (required when --addr is not a loopback address; clients read it from RISE_BACKEND_TOKEN)")
		},
		run: func(ctx context.Context, e *env, fs *flag.FlagSet) error {
			if mf.model == "" {
				return usagef("--model is required")
			}
			if err := web.CheckAddr(addr); err != nil {
				return usagef("--addr: %v", err)
			}
			if !web.IsLoopback(addr) && token == "" {
				return usagef("--addr %s can be reached from other machines: give --token", addr)
			}
			b, err := mf.load(ctx)
			if err != nil {
				return err
			}
			l, err := web.Listen(addr)
			if err != nil {
				return usagef("--addr: %v", err)
			}
			var h http.Handler = steer.NewBackendHandler(b)
			if token != "" {
				h = web.RequireToken(token, h)
			}
			hs := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, MaxHeaderBytes: 1 << 20}
			fmt.Fprintf(e.stdout, "rise backend (%s): http://%s/ serving %s\n", steer.Protocol, l.Addr(), mf.model)
			return web.ServeUntil(ctx, hs, l, nil)
		},
	})
}
