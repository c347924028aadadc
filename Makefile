# The two set-up commands are `make run` and `make test`; see README.md.

GO      ?= go
BIN     := bin/rise
VERSION := $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
LDFLAGS := -X main.version=$(VERSION)
ADDR    ?= 127.0.0.1:8080

# OpenBLAS makes the engines' matrix products several times faster. When
# libopenblas-dev is installed (pkg-config knows openblas, or libopenblas.so
# is in a system library directory) and cgo works, build, test and bench
# link it with -tags openblas; otherwise rise stays pure Go. OPENBLAS=0
# forces pure Go.
OPENBLAS ?= $(shell [ "$$($(GO) env CGO_ENABLED 2>/dev/null)" = 1 ] && \
	{ pkg-config --exists openblas 2>/dev/null || ls /usr/lib/*/libopenblas.so /usr/lib/libopenblas.so /usr/lib64/libopenblas.so /usr/local/lib/libopenblas.so 2>/dev/null | grep -q .; } && \
	echo 1 || echo 0)
ifeq ($(OPENBLAS),1)
TAGS := -tags openblas
export CGO_LDFLAGS := $(or $(shell pkg-config --libs openblas 2>/dev/null),-lopenblas)
endif

.PHONY: all build run test test-blas vet bench bench-runtime bench-atlas fuzz testdata clean steer-demo confidence-demo tinyreason-eval

all: build

build:
	$(GO) build $(TAGS) -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/rise

# run builds rise and serves the workbench on the built-in demo (ADDR=host:port to move it).
run: build
	$(BIN) serve --addr $(ADDR)

vet:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change: $$out"; exit 1; fi
	$(GO) vet $(TAGS) ./...
	$(GO) vet ./...
	@# the pure-Go fallbacks of the assembly kernels, as other machines build them
	$(GO) vet -tags purego ./...
	GOARCH=arm64 $(GO) vet ./...

test: vet
	$(GO) test $(TAGS) -count=1 ./...

# test-blas runs the tests of the packages whose numbers go through BLAS
# (CI runs it again without OpenBLAS, as go install builds rise).
test-blas:
	$(GO) test $(TAGS) -count=1 ./sae/... ./steer/...

# bench runs every benchmark (BENCH=Name narrows them down), then rise bench:
# the TopK engines' speed per step at full size against the PyTorch
# reference, and a whole run of the RISE recipe (ReLU, d_sae 2048; float32,
# and bfloat16 too where the CPU has AVX512_BF16) on a
# planted dump of d_model 1536 (written to BENCHDUMP on first use, 400 MB)
# beside testdata/bench/torch_run.py, when python3 can import torch, and
# rise atlas beside umap-js (bench-atlas, which needs npm).
# BENCHFLAGS passes flags to the per-step rise bench; BENCHRUNSTEPS sets the
# whole run's steps.
BENCH ?= .
BENCHFLAGS ?=
BENCHDUMP ?= $(or $(TMPDIR),/tmp)/rise-bench-d1536
BENCHRUNSTEPS ?= 1000
bench: build
	$(GO) test $(TAGS) -run '^$$' -bench '$(BENCH)' -benchmem ./...
	$(BIN) bench --config topk $(BENCHFLAGS)
	@[ -f $(BENCHDUMP)/manifest.json ] || $(BIN) synth --out $(BENCHDUMP) --rows 65536 --d-model 1536 --features 4096
	$(BIN) bench --run $(BENCHDUMP) --steps $(BENCHRUNSTEPS) --precision all
	RISE=$(BIN) testdata/bench/atlas.sh

# bench-runtime measures the model runtime beside llama.cpp on the same
# random Qwen2-0.5B-shaped model, thread count and machine: decoding and
# reading a 512-token prompt, f32, bf16 (llama.cpp f16), f16 and q8
# (llama.cpp q8_0). It needs npm, numpy and a few GB in /tmp (see
# testdata/bench/runtime.sh); CI does not run it.
bench-runtime: build
	RISE=$(BIN) testdata/bench/runtime.sh

# bench-atlas times rise atlas, the whole command, beside umap-js 1.4.0's
# UMAP alone on the same 8,192 clustered unit rows of 1,536 values, and
# prints both layouts' trustworthiness (testdata/bench/atlas.sh; it needs
# npm, and N=, D= change the rows). CI does not run it.
bench-atlas: build
	RISE=$(BIN) testdata/bench/atlas.sh

# fuzz runs each fuzz target for FUZZTIME (the seed corpora are the f.Add
# calls of each target, and testdata/fuzz where a failure was kept).
FUZZTIME ?= 30s
FUZZ_TARGETS = activations:FuzzNpyHeader activations:FuzzOpenNpz activations:FuzzReadSteps internal/safetensors:FuzzRead \
	steer:FuzzReadGGUFControlVector steer/model:FuzzLoadLlama2C steer/model:FuzzLlama2CTokenizer \
	steer/model:FuzzParseTokenizerJSON steer/model:FuzzBPETokenizer web:FuzzAPI
fuzz:
	@for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t#*:}; \
		echo "fuzz $$name ($$pkg, $(FUZZTIME))"; \
		$(GO) test -run '^$$' -fuzz "^$$name$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 2s ./$$pkg || exit 1; \
	done

# testdata remakes the committed fixture and the golden files that show it.
testdata: build
	$(BIN) synth --out testdata/tiny --rows 400 --d-model 16 --features 32 --seed 7 --force
	$(GO) test ./cmd/rise -run InspectGolden -update

# steer-demo runs the whole RISE loop from the command line on the tiny
# reasoning model (testdata/tinyreason): traces, step activations after
# three blocks, an SAE and an atlas per layer, the separation by layer, and a
# sweep of the reflection vector the atlas found (not a planted one) over
# strengths on held-out problems: out/steer-demo/results.json and dose.svg;
# then all of it in one page, out/steer-demo/report.html (rise report).
# The sweep samples (temperature 1, a fixed seed): greedy decoding of a
# model this small picks the majority step every time and hides the
# minority behaviours the vector moves. Block 1 trains at a lower rate for
# twice as many steps, which keeps its latents alive (web/demo_model.go).
DEMO_OUT      ?= out/steer-demo
TINY_MODEL    ?= testdata/tinyreason/model.bin
TINY_TOK      ?= testdata/tinyreason/tok.bin
STEER_LAYER   ?= 3
STEER_ALPHAS  ?= -32,-16,-8,0,8,16,32
STEER_TEMP    ?= 1
STEER_PROMPTS ?= 100
steer-demo: build
	@rm -rf $(DEMO_OUT) && mkdir -p $(DEMO_OUT)
	$(BIN) traces --out $(DEMO_OUT)/traces.jsonl --n 3000 --seed 7
	$(BIN) dump --model $(TINY_MODEL) --tokenizer $(TINY_TOK) --traces $(DEMO_OUT)/traces.jsonl --layers 1,2,3 --out $(DEMO_OUT)/dump --force
	for l in 1 2 3; do \
		if [ $$l = 1 ]; then rate='--steps 6000 --lr 3e-4'; else rate=; fi; \
		$(BIN) train --data $(DEMO_OUT)/dump --layer $$l --arch topk --k 8 --width 512 --steps 3000 $$rate --batch 256 --resample-every 50 --out $(DEMO_OUT)/sae-l$$l && \
		$(BIN) atlas --sae $(DEMO_OUT)/sae-l$$l --data $(DEMO_OUT)/dump --attribute next --out $(DEMO_OUT)/atlas-l$$l.json --svg $(DEMO_OUT)/map-l$$l || exit 1; \
	done
	$(BIN) atlas --sweep --attribute next --data $(DEMO_OUT)/dump --sae $(DEMO_OUT)/sae-l1 --sae $(DEMO_OUT)/sae-l2 --sae $(DEMO_OUT)/sae-l3 --out $(DEMO_OUT)/sweep.json --svg $(DEMO_OUT)
	printf '{"vectors": [{"source": "atlas:atlas-l%s.json#reflection", "layer": %s, "op": "add", "strength": 1, "positions": "step_boundary"}]}\n' $(STEER_LAYER) $(STEER_LAYER) > $(DEMO_OUT)/reflection.json
	$(BIN) traces --prompts --out $(DEMO_OUT)/heldout.jsonl --n $(STEER_PROMPTS) --seed 99
	$(BIN) steer --model $(TINY_MODEL) --tokenizer $(TINY_TOK) --steer $(DEMO_OUT)/reflection.json --alphas=$(STEER_ALPHAS) \
		--prompts $(DEMO_OUT)/heldout.jsonl --max-tokens 400 --temperature $(STEER_TEMP) --seed 1 --out $(DEMO_OUT)/results.json --svg $(DEMO_OUT)
	$(BIN) export --steer $(DEMO_OUT)/reflection.json --format gguf --out $(DEMO_OUT)/reflection.gguf --model $(TINY_MODEL) 2>/dev/null || \
		echo "(the spec steers at step boundaries, which a GGUF control vector cannot: no reflection.gguf)"
	$(BIN) report --data $(DEMO_OUT)/dump --sae $(DEMO_OUT)/sae-l1 --sae $(DEMO_OUT)/sae-l2 --sae $(DEMO_OUT)/sae-l3 \
		--atlas $(DEMO_OUT)/atlas-l1.json --atlas $(DEMO_OUT)/atlas-l2.json --atlas $(DEMO_OUT)/atlas-l3.json \
		--sweep $(DEMO_OUT)/sweep.json --steer $(DEMO_OUT)/results.json --model $(TINY_MODEL) --out $(DEMO_OUT)/report.html

# tinyreason-eval reproduces the figures of the tiny reasoning model's card
# (testdata/tinyreason/README.md): 200 held-out problems, greedy and sampled.
TINY_OUT ?= out/tinyreason
tinyreason-eval: build
	@rm -rf $(TINY_OUT) && mkdir -p $(TINY_OUT)
	$(BIN) traces --prompts --out $(TINY_OUT)/heldout.jsonl --n 200 --seed 99
	$(BIN) steer --model $(TINY_MODEL) --tokenizer $(TINY_TOK) --prompts $(TINY_OUT)/heldout.jsonl --max-tokens 400 --out $(TINY_OUT)/greedy.json
	$(BIN) steer --model $(TINY_MODEL) --tokenizer $(TINY_TOK) --prompts $(TINY_OUT)/heldout.jsonl --max-tokens 400 --temperature 1 --seed 1 --out $(TINY_OUT)/t1.json

# confidence-demo learns RISE's confidence vector (Eq. 7) on the tiny
# reasoning model: an SAE on its layer-2 step states, then scores over its
# columns that make the model surer at step starts, and what the vector does
# to the entropy there and to the reflection steps of 50 held-out problems.
CONF_OUT   ?= out/confidence-demo
CONF_ITERS ?= 300
confidence-demo: build
	@rm -rf $(CONF_OUT) && mkdir -p $(CONF_OUT)
	$(BIN) traces --out $(CONF_OUT)/traces.jsonl --n 2000 --seed 7
	$(BIN) dump --model $(TINY_MODEL) --tokenizer $(TINY_TOK) --traces $(CONF_OUT)/traces.jsonl --layers 2 --out $(CONF_OUT)/dump --force
	$(BIN) train --data $(CONF_OUT)/dump --arch topk --k 8 --width 512 --steps 1500 --batch 256 --resample-every 50 --out $(CONF_OUT)/sae
	$(BIN) traces --prompts --out $(CONF_OUT)/heldout.jsonl --n 50 --seed 99
	$(BIN) confidence --model $(TINY_MODEL) --tokenizer $(TINY_TOK) --sae $(CONF_OUT)/sae --layer 2 \
		--traces $(CONF_OUT)/traces.jsonl --prompts $(CONF_OUT)/heldout.jsonl --iters $(CONF_ITERS) --temperature 1 --out $(CONF_OUT)/confidence.json

clean:
	rm -rf bin .rise out
