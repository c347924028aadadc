#!/bin/sh
# rise atlas, the whole command, beside umap-js 1.4.0's UMAP alone on the
# same rows, in one run on one machine: wall seconds, their ratio, and the
# trustworthiness (k = 15, Venna and Kaski 2001) of both layouts against the
# rows' exact cosine neighbourhoods, computed by atlasbench trust, which
# shares no code with either layout.
#
# The rows are N clustered unit rows of D values (atlasbench rows: 64
# clusters of random spreads and a tenth of unclustered rows), written as
# rows.npy for umap-js and as the decoder of a TopK SAE for rise atlas, which
# attributes them on a planted rise synth dump of the same width.
#
# usage: testdata/bench/atlas.sh    (make bench-atlas builds bin/rise first)
# environment: N (8192 rows), D (1536), RISE (bin/rise), SHARED (../shared),
# UMAP_DIR (/tmp/rise-umap: a copy of $SHARED/bench/umap, set up with npm
# there on first use), WORK (/tmp/rise-bench-atlas), GO (go).
set -e
N=${N:-8192}
D=${D:-1536}
RISE=${RISE:-bin/rise}
SHARED=${SHARED:-../shared}
U=${UMAP_DIR:-/tmp/rise-umap}
W=${WORK:-/tmp/rise-bench-atlas}
GO=${GO:-go}
HERE=$(cd "$(dirname "$0")" && pwd)

if [ ! -d "$U/node_modules/umap-js" ]; then
	[ -d "$U" ] || cp -r "$SHARED/bench/umap" "$U"
	(cd "$U" && npm ci --silent)
fi
mkdir -p "$W"
"$GO" build -o "$W/atlasbench" "$HERE/atlasbench"
[ -f "$W/rows-$N-$D/rows.npy" ] || "$W/atlasbench" rows --out "$W/rows-$N-$D" --n "$N" --d "$D"
[ -d "$W/dump-$D" ] || "$RISE" synth --out "$W/dump-$D" --rows 4096 --d-model "$D" --features 512 --seed 1 >/dev/null

echo "# $(nproc) cores; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
t0=$(date +%s.%N)
"$RISE" atlas --sae "$W/rows-$N-$D/sae" --data "$W/dump-$D" --out "$W/atlas.json" >"$W/atlas.log" 2>&1
t1=$(date +%s.%N)
(cd "$U" && node bench.js "$W/rows-$N-$D/rows.npy" "$W/umap-js.json" >/dev/null)
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
"$W/atlasbench" trust "$W/rows-$N-$D/rows.npy" "$W/atlas.json" "$W/umap-js.json" >"$W/trust.tsv"
rise_s=$(echo "$t0 $t1" | awk '{ printf "%.1f", $2 - $1 }')
js_s=$(node -e 'console.log(require(process.argv[1]).seconds)' "$W/umap-js.json")
tr=$(awk 'NR == 1 { print $2 }' "$W/trust.tsv")
tj=$(awk 'NR == 2 { print $2 }' "$W/trust.tsv")
echo "| rows | rise atlas (whole command) | umap-js 1.4.0 (UMAP alone) | ratio | trustworthiness rise | umap-js | difference |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
echo "$N $D $rise_s $js_s $tr $tj" | awk '{ printf "| %d x %d | %.1f s | %.1f s | %.2fx | %.4f | %.4f | %+.4f |\n", $1, $2, $3, $4, $4 / $3, $5, $6, $5 - $6 }'
