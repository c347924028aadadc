package dashboard

import (
	"bufio"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/rise-interp/rise/activations"
	"github.com/rise-interp/rise/sae"
	"github.com/rise-interp/rise/steer/model"
)

// fixture is a small dump whose SAE's latents are known without running
// it: latent j of row r is max(x[r][j], 0) (W_enc the identity on the
// first three coordinates, no biases, ReLU), so the test computes every
// expected value from the rows alone.
type fixture struct {
	sae   *sae.SAE
	dump  *activations.Dump
	layer *activations.Layer
	steps []activations.Step
	x     [][]float32
}

const fixD, fixM = 4, 3

func newFixture(t *testing.T) *fixture {
	t.Helper()
	rng := rand.New(rand.NewPCG(5, 9))
	dir := filepath.Join(t.TempDir(), "dump")
	w, err := activations.Create(dir, activations.WriterOptions{Model: "tiny", DModel: fixD, Layers: []int{2}})
	if err != nil {
		t.Fatal(err)
	}
	fx := &fixture{}
	for tr := range 6 {
		for st := range 30 {
			row := make([]float32, fixD)
			for i := range row {
				row[i] = float32(rng.NormFloat64())
			}
			text := fmt.Sprintf("We add %d and %d to get the sum.", rng.IntN(90), rng.IntN(90))
			if rng.IntN(8) == 0 {
				// Latent 0 fires strongly on the steps that say "wait".
				text = "Wait, let me check that again."
				row[0] = 2 + float32(rng.Float64())
			} else {
				row[0] = min(row[0], 0.3) // faint elsewhere
			}
			fx.x = append(fx.x, row)
			step := activations.Step{Trace: fmt.Sprintf("t%d", tr), Step: st, Text: text}
			fx.steps = append(fx.steps, step)
			if err := w.WriteRows(2, row); err != nil {
				t.Fatal(err)
			}
			if err := w.WriteSteps(step); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	fx.dump, err = activations.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fx.dump.Close() })
	fx.layer = fx.dump.Layer(2)
	s, err := sae.New(sae.Standard, fixD, fixM, 0)
	if err != nil {
		t.Fatal(err)
	}
	for j := range fixM {
		s.WEnc[j*fixM+j] = 1
		s.WDec[j*fixD+j] = 1
	}
	s.ApplyBDecToInput = false
	s.Metadata.HookLayer = 2
	fx.sae = s
	return fx
}

// value is latent j of row r, from the rows alone.
func (fx *fixture) value(r, j int) float32 { return max(fx.x[r][j], 0) }

func TestBuildGathersWhatTheRowsSay(t *testing.T) {
	fx := newFixture(t)
	const top, bands = 5, 4
	rep, err := Build(context.Background(), fx.sae, fx.layer, fx.steps, Options{Features: []int{0, 2}, Top: top, Bands: bands, PerBand: 2, HistBins: 10, HoldOut: -1})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Features) != 2 || rep.Features[0].Index != 0 || rep.Features[1].Index != 2 {
		t.Fatalf("features %+v", rep.Features)
	}
	for _, f := range rep.Features {
		j := f.Index
		var fires int64
		var hi float32
		rows := []int{}
		for r := range fx.x {
			if v := fx.value(r, j); v > 0 {
				fires++
				hi = max(hi, v)
				rows = append(rows, r)
			}
		}
		if f.Fires != fires || f.Max != hi {
			t.Errorf("feature %d: fires %d max %v, the rows say %d and %v", j, f.Fires, f.Max, fires, hi)
		}
		sort.SliceStable(rows, func(a, b int) bool { return fx.value(rows[a], j) > fx.value(rows[b], j) })
		if len(f.Top) != top {
			t.Fatalf("feature %d: %d top examples, expected %d", j, len(f.Top), top)
		}
		for k, x := range f.Top {
			if x.Row != rows[k] || x.Value != fx.value(rows[k], j) || x.Band != -1 {
				t.Errorf("feature %d top %d: row %d value %v band %d, expected row %d value %v", j, k, x.Row, x.Value, x.Band, rows[k], fx.value(rows[k], j))
			}
		}
		bandCount := make([]int64, bands)
		var histSum int64
		for _, r := range rows {
			v := fx.value(r, j)
			b := 0
			for b < bands-1 && v > hi*float32(b+1)/bands {
				b++
			}
			bandCount[b]++
		}
		for _, c := range f.Hist {
			histSum += c
		}
		if !slices.Equal(f.BandFires, bandCount) || histSum != fires {
			t.Errorf("feature %d: band counts %v (rows say %v), histogram holds %d of %d firings", j, f.BandFires, bandCount, histSum, fires)
		}
		if len(f.Banded) == 0 {
			t.Errorf("feature %d: no banded examples", j)
		}
		for _, x := range append(slices.Clone(f.Top), f.Banded...) {
			if x.Value != fx.value(x.Row, j) || x.Value <= 0 {
				t.Errorf("feature %d row %d: value %v, the row says %v", j, x.Row, x.Value, fx.value(x.Row, j))
			}
			if x.Band >= 0 && !(x.Value > x.BandLo && x.Value <= x.BandHi) {
				t.Errorf("feature %d row %d: value %v outside its band (%v, %v]", j, x.Row, x.Value, x.BandLo, x.BandHi)
			}
			first := fx.steps[x.Row].Step == 0
			switch {
			case first && x.Prev != nil:
				t.Errorf("feature %d row %d: a trace's first step has a previous step", j, x.Row)
			case !first && (x.Prev == nil || x.PrevRow != x.Row-1 || x.PrevValue != fx.value(x.Row-1, j)):
				t.Errorf("feature %d row %d: previous step %v row %d value %v, expected row %d value %v", j, x.Row, x.Prev, x.PrevRow, x.PrevValue, x.Row-1, fx.value(x.Row-1, j))
			}
		}
	}
	if ps := rep.Features[0].Phrases; len(ps) == 0 || !strings.Contains(Description(rep.Features[0]), "wait") {
		t.Errorf("feature 0 fires on the \"wait\" steps, explained by %v", ps)
	}
	if _, err := Build(context.Background(), fx.sae, fx.layer, fx.steps, Options{Features: []int{3}}); err == nil || !strings.Contains(err.Error(), "feature 3 is outside") {
		t.Errorf("feature 3 of 3: %v", err)
	}
	if _, err := Build(context.Background(), fx.sae, fx.layer, fx.steps[1:], Options{}); err == nil || !strings.Contains(err.Error(), "one step per row") {
		t.Errorf("steps one short: %v", err)
	}
}

func TestPiecesJoinBack(t *testing.T) {
	for _, s := range []string{"", "  Wait,  let me\tcheck.\n", "x", "a b"} {
		if got := strings.Join(Pieces(s), ""); got != s {
			t.Errorf("Pieces(%q) joins to %q", s, got)
		}
	}
	if got := Pieces("Wait, let me"); !slices.Equal(got, []string{"Wait, ", "let ", "me"}) {
		t.Errorf("Pieces: %q", got)
	}
}

// neuronpediaFields are the columns of Neuronpedia's tables as its export
// and import scripts write them (neuronpedia_utils/db_models: Feature,
// Activation and Explanation dataclasses; export-data.py's column lists):
// an import reads each row into those dataclasses, so a missing or
// unknown key breaks it.
var neuronpediaFields = map[string][]string{
	"features": {"modelId", "layer", "index", "creatorId", "createdAt", "maxActApprox", "hasVector", "vector", "vectorLabel",
		"vectorDefaultSteerStrength", "hookName", "topkCosSimIndices", "topkCosSimValues", "neuron_alignment_indices",
		"neuron_alignment_values", "neuron_alignment_l1", "correlated_neurons_indices", "correlated_neurons_pearson",
		"correlated_neurons_l1", "correlated_features_indices", "correlated_features_pearson", "correlated_features_l1",
		"neg_str", "neg_values", "pos_str", "pos_values", "frac_nonzero", "freq_hist_data_bar_heights",
		"freq_hist_data_bar_values", "logits_hist_data_bar_heights", "logits_hist_data_bar_values", "decoder_weights_dist"},
	"activations": {"id", "tokens", "index", "layer", "modelId", "maxValue", "maxValueTokenIndex", "minValue", "values",
		"creatorId", "dataSource", "dataIndex", "dfaValues", "dfaTargetIndex", "dfaMaxValue", "createdAt", "lossValues",
		"logitContributions", "binMin", "binMax", "binContains", "qualifyingTokenIndex"},
	"explanations": {"id", "modelId", "layer", "index", "description", "authorId", "embedding", "triggeredById", "typeName",
		"explanationModelName", "notes", "createdAt"},
}

func readGzLines(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var out []map[string]any
	sc := bufio.NewScanner(zr)
	sc.Buffer(nil, 1<<24)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, m)
	}
	return out
}

func TestNeuronpediaExportLayout(t *testing.T) {
	fx := newFixture(t)
	rep, err := Build(context.Background(), fx.sae, fx.layer, fx.steps, Options{Top: 4, Bands: 3, PerBand: 2, HoldOut: -1})
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	dir, err := WriteNeuronpedia(context.Background(), out, rep, NeuronpediaMeta{ModelID: "tiny-model", SourceSet: "rise-relu", BatchSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(out, "tiny-model", "2-rise-relu"); dir != want {
		t.Fatalf("source directory %s, expected %s", dir, want)
	}
	for _, name := range []string{"model.jsonl", "release.jsonl", "sourceset.jsonl", "source.jsonl"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Error(err)
		}
	}
	byRow := map[string]int{}
	for r, s := range fx.steps {
		byRow[fmt.Sprintf("%s:%d", s.Trace, s.Step)] = r
	}
	// 3 features in batches of 2: batch-0 holds 0 and 1, batch-1 holds 2.
	indices := map[string][]string{}
	for _, sub := range []string{"features", "activations", "explanations"} {
		for b := range 2 {
			rows := readGzLines(t, filepath.Join(dir, sub, fmt.Sprintf("batch-%d.jsonl.gz", b)))
			for _, row := range rows {
				var keys []string
				for k := range row {
					keys = append(keys, k)
				}
				sort.Strings(keys)
				want := slices.Clone(neuronpediaFields[sub])
				sort.Strings(want)
				if !slices.Equal(keys, want) {
					t.Fatalf("%s batch %d: keys %v, Neuronpedia's %v", sub, b, keys, want)
				}
				if row["layer"] != "2-rise-relu" || row["modelId"] != "tiny-model" {
					t.Fatalf("%s: layer %v model %v", sub, row["layer"], row["modelId"])
				}
				idx := row["index"].(string)
				if !slices.Contains(indices[sub+fmt.Sprint(b)], idx) {
					indices[sub+fmt.Sprint(b)] = append(indices[sub+fmt.Sprint(b)], idx)
				}
				if sub != "activations" {
					continue
				}
				// The tokens join to the context and the step, each ended by
				// the delimiter, which alone carries a value: the last, the
				// step's own.
				j := map[string]int{"0": 0, "1": 1, "2": 2}[idx]
				r, ok := byRow[row["dataIndex"].(string)]
				if !ok {
					t.Fatalf("activation of unknown step %v", row["dataIndex"])
				}
				var text strings.Builder
				for _, tok := range row["tokens"].([]any) {
					text.WriteString(tok.(string))
				}
				joined := fx.steps[r].Text + "\n\n"
				if fx.steps[r].Step > 0 {
					joined = fx.steps[r-1].Text + "\n\n" + joined
				}
				if text.String() != joined {
					t.Fatalf("tokens join to %q, expected %q", text.String(), joined)
				}
				vals := row["values"].([]any)
				last := len(vals) - 1
				if int(row["maxValueTokenIndex"].(float64)) != last || float32(vals[last].(float64)) != fx.value(r, j) || float32(row["maxValue"].(float64)) != fx.value(r, j) {
					t.Fatalf("feature %d row %d: values %v, max index %v; expected the step's value %v on the last token", j, r, vals, row["maxValueTokenIndex"], fx.value(r, j))
				}
				toks := row["tokens"].([]any)
				for k, v := range vals[:last] {
					want := 0.0
					if toks[k] == "\n\n" {
						want = float64(fx.value(r-1, j))
					}
					if float64(float32(v.(float64))) != float64(float32(want)) {
						t.Fatalf("feature %d row %d token %d %q: value %v, expected %v", j, r, k, toks[k], v, want)
					}
				}
			}
		}
	}
	if !slices.Equal(indices["features0"], []string{"0", "1"}) || !slices.Equal(indices["features1"], []string{"2"}) ||
		!slices.Equal(indices["activations0"], []string{"0", "1"}) || !slices.Equal(indices["activations1"], []string{"2"}) {
		t.Errorf("batches hold features %v", indices)
	}
	if _, err := WriteNeuronpedia(context.Background(), out, rep, NeuronpediaMeta{ModelID: "a/b", SourceSet: "s"}); err == nil || !strings.Contains(err.Error(), "without slashes") {
		t.Errorf("model id with a slash: %v", err)
	}
}

// TestModelLens checks the lens's choice of tokens on the project's tiny
// Llama: the promoted are the largest logits of the direction, largest
// first, the suppressed the smallest, smallest first.
func TestModelLens(t *testing.T) {
	m, tok, err := model.Load(filepath.Join("..", "..", "testdata", "hf", "llama"), "")
	if err != nil {
		t.Fatal(err)
	}
	dir := make([]float32, m.Dim)
	for i := range dir {
		dir[i] = float32(i%7) - 3
	}
	l, err := ModelLens(m, tok, 5)(dir)
	if err != nil {
		t.Fatal(err)
	}
	logits, _ := m.LogitLens(dir)
	order := make([]int, min(tok.VocabSize(), len(logits)))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return logits[order[a]] > logits[order[b]] })
	if len(l.Promoted) != 5 || len(l.Suppressed) != 5 {
		t.Fatalf("%d promoted and %d suppressed, expected 5 each", len(l.Promoted), len(l.Suppressed))
	}
	for k := range 5 {
		p, s := order[k], order[len(order)-1-k]
		if l.Promoted[k].ID != p || l.Promoted[k].Logit != logits[p] || l.Suppressed[k].ID != s || l.Suppressed[k].Logit != logits[s] {
			t.Errorf("rank %d: promoted %+v suppressed %+v, expected ids %d and %d", k, l.Promoted[k], l.Suppressed[k], p, s)
		}
	}
	if _, err := ModelLens(m, tok, 5)(dir[1:]); err == nil {
		t.Error("a direction of the wrong width has a lens")
	}
	// Logits full of ties (five values over the vocabulary), one padding
	// row past it: the same ends as a stable sort, ties in id order.
	ties := make([]float32, tok.VocabSize()+1)
	for i := range ties {
		ties[i] = float32(i * 7 % 5)
	}
	ties[len(ties)-1] = 100 // padding, never a token
	order = order[:tok.VocabSize()]
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return ties[order[a]] > ties[order[b]] })
	for _, n := range []int{1, 12, len(order) + 3} {
		l := TopTokens(ties, tok, n)
		k := min(n, len(order))
		if len(l.Promoted) != k || len(l.Suppressed) != k {
			t.Fatalf("n %d: %d promoted and %d suppressed, want %d each", n, len(l.Promoted), len(l.Suppressed), k)
		}
		for i := range k {
			if p, s := order[i], order[len(order)-1-i]; l.Promoted[i].ID != p || l.Suppressed[i].ID != s {
				t.Fatalf("n %d, rank %d: promoted %d, suppressed %d; a stable sort gives %d and %d", n, i, l.Promoted[i].ID, l.Suppressed[i].ID, p, s)
			}
		}
	}
}

func TestBuildStopsWhenCancelled(t *testing.T) {
	fx := newFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Build(ctx, fx.sae, fx.layer, fx.steps, Options{Features: []int{0}}); err == nil || !strings.Contains(err.Error(), "context canceled") {
		t.Errorf("cancelled build: %v", err)
	}
	rep, err := Build(context.Background(), fx.sae, fx.layer, fx.steps, Options{Features: []int{0}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := WriteNeuronpedia(ctx, t.TempDir(), rep, NeuronpediaMeta{ModelID: "m", SourceSet: "s"}); err == nil || !strings.Contains(err.Error(), "context canceled") {
		t.Errorf("cancelled export: %v", err)
	}
}

// vocabOnly is a tokenizer of a given vocabulary size that names every id
// "t", for timing the lens without a model.
type vocabOnly int

func (v vocabOnly) Encode(string, bool, bool) []int { return nil }
func (v vocabOnly) Decode([]int, bool) string       { return "t" }
func (v vocabOnly) VocabSize() int                  { return int(v) }
func (v vocabOnly) BOS() int                        { return -1 }
func (v vocabOnly) EOS() []int                      { return nil }
func (v vocabOnly) Token(int) string                { return "t" }

// BenchmarkTopTokens times the lens's choice of 10 promoted and 10
// suppressed tokens among Qwen2's 151,936 logits, beside the stable sort
// of every id it replaced.
func BenchmarkTopTokens(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	logits := make([]float32, 151936)
	for i := range logits {
		logits[i] = float32(rng.NormFloat64())
	}
	b.Run("select", func(b *testing.B) {
		for b.Loop() {
			TopTokens(logits, vocabOnly(len(logits)), 10)
		}
	})
	b.Run("stable-sort", func(b *testing.B) {
		for b.Loop() {
			ids := make([]int, len(logits))
			for i := range ids {
				ids[i] = i
			}
			sort.SliceStable(ids, func(a, c int) bool { return logits[ids[a]] > logits[ids[c]] })
		}
	})
}
