#!/bin/sh
# Speed of the model runtime beside llama.cpp, in one run on one machine:
# batch-1 greedy decoding (DECODE tokens, 128 by default, after a one-token prompt) and reading
# a 512-token prompt, on a random model of Qwen2-0.5B's shape, with the same
# thread count, at each precision: rise f32 / llama.cpp f32, rise bf16 /
# llama.cpp f16 (rise reads the BF16 safetensors; llama.cpp has no BF16
# CPU path as fast as its F16 one), rise f16 / llama.cpp f16, rise q8 /
# llama.cpp q8_0. The two engines alternate, so that the machine's load
# falls on both.
#
# usage: testdata/bench/runtime.sh    (make bench-runtime builds bin/rise first)
# environment: THREADS (2), REPS (3), DECODE (128 tokens), PAIRS (which
# precisions: "f32 bf16 f16 q8"), RISE (bin/rise), SHARED (../shared),
# LLAMACPP_DIR (/tmp/rise-llamacpp: a copy of $SHARED/bench/llamacpp, set
# up with npm there on first use), MODELS_DIR (/tmp/rise-bench-models),
# PYTHON (/usr/bin/python3, with numpy).
set -e
T=${THREADS:-2}
R=${REPS:-3}
N=${DECODE:-128}
PAIRS=${PAIRS:-f32 bf16 f16 q8}
RISE=${RISE:-bin/rise}
SHARED=${SHARED:-../shared}
LL=${LLAMACPP_DIR:-/tmp/rise-llamacpp}
M=${MODELS_DIR:-/tmp/rise-bench-models}
PY=${PYTHON:-/usr/bin/python3}
HERE=$(cd "$(dirname "$0")" && pwd)

if [ ! -x "$LL/build/anchor" ]; then
	[ -d "$LL" ] || cp -r "$SHARED/bench/llamacpp" "$LL"
	(cd "$LL" && NODE_LLAMA_CPP_SKIP_DOWNLOAD=true npm ci && ./build_anchor.sh)
fi
export ANCHOR_LIB_DIR="$LL/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64"
mkdir -p "$M"
[ -f "$M/rand05b-hf/model.safetensors" ] || "$PY" "$LL/make_random_llama.py" "$M/rand05b-hf" --arch qwen2
[ -f "$M/rand05b-bf16-hf/model.safetensors" ] || "$PY" "$HERE/to_bf16.py" "$M/rand05b-hf" "$M/rand05b-bf16-hf"
[ -f "$M/rand05b-f32.gguf" ] || "$PY" "$LL/hf_to_gguf.py" "$M/rand05b-hf" "$M/rand05b-f32.gguf" f32
[ -f "$M/rand05b-f16.gguf" ] || "$PY" "$LL/hf_to_gguf.py" "$M/rand05b-hf" "$M/rand05b-f16.gguf" f16
[ -f "$M/rand05b-q8_0.gguf" ] || "$LL/build/anchor" quant "$M/rand05b-f32.gguf" "$M/rand05b-q8_0.gguf" q8_0 "$T"

# The prompt rise bench reads: token i is (7919·i + 13) mod the vocabulary.
IDS=$(awk 'BEGIN { for (i = 0; i < 512; i++) printf "%s%d", (i ? "," : ""), (i * 7919 + 13) % 151936 }')

echo "# $(nproc) cores, $T threads, $R repetitions; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for p in $PAIRS; do
	case $p in
	f32) set -- f32 rand05b-hf --dtype=f32 f32 ;;
	bf16) set -- bf16 rand05b-bf16-hf --dtype=bf16 f16 ;;
	f16) set -- f16 rand05b-hf --dtype=f16 f16 ;;
	q8) set -- q8 rand05b-hf --quant=q8 q8_0 ;;
	*) echo "PAIRS: expected f32, bf16, f16 or q8, found $p" >&2; exit 2 ;;
	esac
	echo "## rise $1 vs llama.cpp $4"
	"$LL/build/anchor" gen "$M/rand05b-$4.gguf" "$N" "$T" "$R" --prompt-ids 0 | head -1 | sed "s|^|llama.cpp\tdecode\t$4\t|"
	"$RISE" bench --model "$M/$2" "$3" --decode "$N" --prompt-len 0 --reps "$R" --threads "$T"
	for r in $(seq "$R"); do
		(cd "$LL" && node greedy.mjs "$M/rand05b-$4.gguf" --n 1 --threads "$T" --ctx 1024 --prompt-ids "$IDS" | head -1) |
			sed 's/.*"first_token_ms":\([0-9.]*\).*/\1/' | awk -v q="$4" '{ printf "llama.cpp\tprefill\t%s\t%.2f tok/s (512-token prompt, first token after %.0f ms)\n", q, 512000 / $1, $1 }'
	done
	"$RISE" bench --model "$M/$2" "$3" --decode 0 --prompt-len 512 --reps "$R" --threads "$T"
done
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
