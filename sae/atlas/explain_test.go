package atlas

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rise-interp/rise/activations"
	"github.com/rise-interp/rise/activations/synth"
	"github.com/rise-interp/rise/internal/vec"
	"github.com/rise-interp/rise/sae"
)

func TestWordsAndCorpus(t *testing.T) {
	if got := Words("Wait, let me check: 3 + 4 = 7. That's it!"); !slices.Equal(got, []string{"wait", "let", "me", "check", "3", "4", "7", "that's", "it"}) {
		t.Errorf("Words: %q", got)
	}
	c := NewCorpus([]string{"a b c d e", "a b"}, nil, nil)
	// "a b c d e": 5 unigrams, 4 bigrams, 3 trigrams, 2 four-grams; "a b": 3.
	if c.Total != 2 || len(c.Steps[0]) != 14 || len(c.Steps[1]) != 3 {
		t.Errorf("total %d steps, %d and %d n-grams; expected 2, 14, 3", c.Total, len(c.Steps[0]), len(c.Steps[1]))
	}
	if id := c.ID("A  B"); id < 0 || c.Background[id] != 2 {
		t.Errorf("phrase \"a b\": id %d", id)
	}
	if c.ID("e a") != -1 {
		t.Error("a phrase no step holds has an id")
	}
}

// TestPhrasesLogOdds checks the log-odds over steps on a corpus where the
// example steps say "hold the line" and the others do not, against the
// formula of Monroe et al. (2008) computed by hand for "hold".
func TestPhrasesLogOdds(t *testing.T) {
	var texts []string
	for i := range 40 {
		if i < 5 {
			texts = append(texts, "we hold the line here")
		} else {
			texts = append(texts, "we add the numbers here")
		}
	}
	c := NewCorpus(texts, nil, nil)
	ps, _ := c.phrases(newLogOddsScratch(c), []int32{0, 1, 2, 3, 4}, nil, PhraseOptions{Keep: 10, MinZ: 1})
	if len(ps) == 0 || !strings.Contains(ps[0].Text, "hold") && !strings.Contains(ps[0].Text, "line") {
		t.Fatalf("phrases %v: expected one of \"hold the line\" first", ps)
	}
	for _, p := range ps {
		if strings.Contains(p.Text, "add") || p.Text == "we" || p.Text == "here" || p.Text == "the" {
			t.Errorf("phrase %q is as common outside the examples as in them", p.Text)
		}
	}
	// "hold": y_a = 5 of n_a = 5 example steps, y_b = 0 of n_b = 35 other
	// steps, α = 10 × 5/40.
	ya, na, yb, nb, a0 := 5.0, 5.0, 0.0, 35.0, 10.0
	al := a0 * 5 / 40
	d := math.Log((ya+al)/(na+a0-ya-al)) - math.Log((yb+al)/(nb+a0-yb-al))
	want := d / math.Sqrt(1/(ya+al)+1/(yb+al))
	all, _ := c.phrases(newLogOddsScratch(c), []int32{0, 1, 2, 3, 4}, nil, PhraseOptions{Keep: 100, MinZ: -100})
	found := false
	for _, p := range all {
		if p.Text == "hold" {
			found = true
			if math.Abs(p.Z-want) > 1e-9 {
				t.Errorf("z(hold) = %v, expected %v", p.Z, want)
			}
		}
	}
	if !found && !slices.ContainsFunc(all, func(p Phrase) bool { return containsPhrase(p.Text, "hold") }) {
		t.Errorf("neither \"hold\" nor a phrase holding it among %v", all)
	}
}

// TestDetectionNumbers checks precision, recall, F1 and AUC on six steps
// worked by hand.
func TestDetectionNumbers(t *testing.T) {
	// Steps 0..5; the feature fires on 0, 1, 2. Scores: 0 → 2, 1 → 1,
	// 3 → 1, the rest 0. Predicted firing: 0, 1, 3 → tp 2, precision 2/3,
	// recall 2/3. AUC: pairs (pos, neg) = 3 × 3 = 9; step 0 (2) beats all
	// 3; step 1 (1) beats 4, 5 and ties 3 → 2.5; step 2 (0) ties 4, 5 → 1.
	score := []float64{2, 1, 0, 1, 0, 0}
	fired := []bool{true, true, true, false, false, false}
	d := detection(score, fired, []int32{0, 1, 3}, 3, 6)
	if math.Abs(d.Precision-2.0/3) > 1e-12 || math.Abs(d.Recall-2.0/3) > 1e-12 || math.Abs(d.F1-2.0/3) > 1e-12 {
		t.Errorf("precision %v recall %v F1 %v, expected 2/3 each", d.Precision, d.Recall, d.F1)
	}
	if want := 6.5 / 9; math.Abs(d.AUC-want) > 1e-12 {
		t.Errorf("AUC %v, expected %v", d.AUC, want)
	}
}

// TestDetectionBalanced: a feature that fires on 10 of 1,000 steps, whose
// phrases match all 10 and 90 of the other 990. Over all steps precision
// is 0.1 and F1 2/11; on as many firing steps as non-firing ones (as
// Delphi scores), TPR 1 and FPR 1/11 give precision 11/12 and F1 22/23.
func TestDetectionBalanced(t *testing.T) {
	const steps, positives = 1000, 10
	score := make([]float64, steps)
	fired := make([]bool, steps)
	var touched []int32
	for i := range 100 {
		score[i], fired[i] = 1, i < positives
		touched = append(touched, int32(i))
	}
	d := detection(score, fired, touched, positives, steps)
	for _, c := range []struct {
		name      string
		got, want float64
	}{{"precision", d.Precision, 0.1}, {"F1", d.F1, 2.0 / 11}, {"balanced precision", d.BalancedPrecision, 11.0 / 12}, {"balanced F1", d.BalancedF1, 22.0 / 23}} {
		if math.Abs(c.got-c.want) > 1e-12 {
			t.Errorf("%s %v, expected %v", c.name, c.got, c.want)
		}
	}
}

// TestExplainPlanted explains a TopK SAE trained on a planted dump with an
// unnamed behaviour: the columns tied to reflection and backtracking are
// explained by those behaviours' phrases and detected well on held-out
// traces, and the first candidate behaviour is the unnamed group's, named
// by its withheld phrase.
func TestExplainPlanted(t *testing.T) {
	if testing.Short() {
		t.Skip("trains an SAE")
	}
	ctx := context.Background()
	p := plantedDumpWith(t, 0.08)
	truth, layer, steps, s := p.truth, p.layer, p.steps, p.sae
	ex, err := Explain(ctx, s, layer, steps, ExplainOptions{HoldOutSeed: 1})
	if err != nil {
		t.Fatal(err)
	}
	unit := vec.UnitRows(s.WDec, s.DSae, s.DIn)
	// The phrases of each behaviour's templates in activations/synth
	// (text.go): RISE's keywords, and "net" (of "net change"), which only
	// the backtracking templates say.
	vocab := map[string][]string{
		synth.Reflection:   {"wait", "check", "verify", "make sure", "hold on", "correct", "seems right", "think again"},
		synth.Backtracking: {"alternatively", "another", "differently", "net"},
	}
	for b, words := range vocab {
		recovered, explained := 0, 0
		for _, f := range truth.Behaviours[b] {
			// The SAE column closest to the planted direction, when it
			// recovers it (cosine at least 0.8).
			best, bestCos := -1, 0.8
			for j := range s.DSae {
				if c := vec.Cosine(unit[j*s.DIn:(j+1)*s.DIn], truth.Direction(f)); c >= bestCos {
					best, bestCos = j, c
				}
			}
			if best < 0 {
				continue
			}
			recovered++
			fe := ex.Features[best]
			if slices.ContainsFunc(fe.Phrases, func(p Phrase) bool {
				return slices.ContainsFunc(words, func(w string) bool { return strings.Contains(p.Text, w) })
			}) {
				explained++
			}
			t.Logf("%s: planted %d, column %d (cos %.2f): F1 %.3f AUC %.3f phrases %v", b, f, best, bestCos, fe.Detection.F1, fe.Detection.AUC, fe.Phrases)
		}
		if recovered == 0 || explained*3 < recovered*2 {
			t.Errorf("%s: %d of %d recovered columns explained by its phrases, expected two thirds", b, explained, recovered)
		}
	}

	cl, err := KMeans(unit, s.DSae, s.DIn, 12, KMeansOptions{Restarts: 3, Seed: 1, Context: ctx})
	if err != nil {
		t.Fatal(err)
	}
	cands, err := ex.Candidates(cl.Labels, unit, s.DIn, steps, GroupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(cands) == 0 {
		t.Fatal("no candidate behaviour")
	}
	planted := truth.Behaviours[synth.Unnamed]
	for i, c := range cands[:min(5, len(cands))] {
		var cos []float64
		for _, j := range c.Features {
			best := 0.0
			for _, f := range planted {
				best = max(best, vec.Cosine(unit[j*s.DIn:(j+1)*s.DIn], truth.Direction(f)))
			}
			cos = append(cos, math.Round(best*100)/100)
		}
		t.Logf("candidate %d: best cosines with the unnamed group %v", i, cos)
		t.Logf("candidate %d: cluster %d features %v coherence %.3f F1 %.3f phrases %v enrichment %v", i, c.Cluster, c.Features, c.Coherence, c.MeanF1, c.Phrases, c.Enrichment)
	}
	first := cands[0]
	if !slices.ContainsFunc(first.Phrases, func(p Phrase) bool { return strings.Contains(p.Text, "sum up") }) {
		t.Errorf("first candidate's phrases %v do not name the withheld phrase %q", first.Phrases, synth.UnnamedPhrase)
	}
	// Most of its features recover the unnamed group's planted directions,
	// and its vector points along the group's (measured, seed 1: five of
	// seven members at cosine 0.64 to 0.99, vector cosine 0.85).
	hits := 0
	for _, j := range first.Features {
		for _, f := range planted {
			if vec.Cosine(unit[j*s.DIn:(j+1)*s.DIn], truth.Direction(f)) >= 0.6 {
				hits++
				break
			}
		}
	}
	if hits*2 <= len(first.Features) {
		t.Errorf("first candidate: %d of its %d features recover an unnamed planted direction, expected most", hits, len(first.Features))
	}
	dir := groupDirection(t, truth, synth.Unnamed)
	cos := vec.Cosine(first.Vector, dir)
	t.Logf("first candidate: %d of %d features recover an unnamed direction; vector cosine %.3f", hits, len(first.Features), cos)
	if cos < 0.6 {
		t.Errorf("first candidate's vector has cosine %.3f with the unnamed group's direction, expected at least 0.6", cos)
	}
}

// TestAnnotateSearchAndReload explains the planted atlas, searches it by
// phrase and reads the explanations back from disk.
func TestAnnotateSearchAndReload(t *testing.T) {
	if testing.Short() {
		t.Skip("trains an SAE")
	}
	ctx := context.Background()
	p := plantedDumpWith(t, 0.08)
	layer, steps, s := p.layer, p.steps, p.sae
	ex, err := Explain(ctx, s, layer, steps, ExplainOptions{HoldOutSeed: 1})
	if err != nil {
		t.Fatal(err)
	}
	a, err := Build(ctx, s, layer, steps, Options{Layout: "pca", Clusters: 12, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	unit := vec.UnitRows(s.WDec, s.DSae, s.DIn)
	if err := ex.Annotate(a, unit, steps, GroupOptions{}); err != nil {
		t.Fatal(err)
	}
	if len(a.Candidates) == 0 || !slices.ContainsFunc(a.Candidates[0].Phrases, func(p Phrase) bool { return p.Text == synth.UnnamedPhrase }) {
		t.Errorf("atlas candidates: the first does not say %q: %+v", synth.UnnamedPhrase, a.Candidates)
	}
	for _, c := range a.Clusters {
		if c.Explained == nil || c.Explained.Size != c.Size {
			t.Fatalf("cluster %d: explanation %+v for %d members", c.ID, c.Explained, c.Size)
		}
	}
	hits, err := a.Search("Wait", 5)
	if err != nil || len(hits) == 0 {
		t.Fatalf("search wait: %v, %v", hits, err)
	}
	if hits[0].Behaviour != synth.Reflection {
		t.Errorf("search wait: the best hit %+v is not a reflection feature", hits[0])
	}
	for i := 1; i < len(hits); i++ {
		if hits[i].Score > hits[i-1].Score {
			t.Errorf("search wait: hit %d scores %v above hit %d's %v", i, hits[i].Score, i-1, hits[i-1].Score)
		}
	}
	if _, err := a.Search(" ,; ", 5); err == nil {
		t.Error("search for no word: expected an error")
	}

	file := filepath.Join(t.TempDir(), "explanations.json")
	if err := ex.Save(file); err != nil {
		t.Fatal(err)
	}
	back, err := LoadExplanations(file, steps)
	if err != nil {
		t.Fatal(err)
	}
	g1, err := ex.ExplainGroup(a.Candidates[0].Features, unit, s.DIn, steps)
	if err != nil {
		t.Fatal(err)
	}
	g2, err := back.ExplainGroup(a.Candidates[0].Features, unit, s.DIn, steps)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(g1.Phrases, g2.Phrases) || g1.MeanF1 != g2.MeanF1 || !slices.Equal(back.HeldOut, ex.HeldOut) {
		t.Errorf("reloaded explanations differ: %v vs %v", g2.Phrases, g1.Phrases)
	}
	if _, err := LoadExplanations(file, steps[:10]); err == nil || !strings.Contains(err.Error(), "8000 rows") {
		t.Errorf("explanations of other steps: got %v", err)
	}
}

func TestExplainBadInputs(t *testing.T) {
	layer, steps := tinyDump(t)
	s := tinySAE(t)
	ctx := context.Background()
	if _, err := Explain(ctx, s, layer, steps[:3], ExplainOptions{}); err == nil || !strings.Contains(err.Error(), "found 3 steps") {
		t.Errorf("3 steps for 5 rows: got %v", err)
	}
	if _, err := Explain(ctx, s, layer, steps, ExplainOptions{HoldOut: 1}); err == nil {
		t.Error("hold-out 1: expected an error")
	}
	// Scored in-sample (no held-out traces): every feature gets a score.
	ex, err := Explain(ctx, s, layer, steps, ExplainOptions{HoldOut: -1})
	if err != nil {
		t.Fatal(err)
	}
	// Latent 0 is x0: it fires on rows 0, 1 and 4.
	if fe := ex.Features[0]; fe.Fires != 3 || fe.Detection == nil || fe.Detection.Positives != 3 || fe.Detection.Steps != 5 {
		t.Errorf("feature 0: %+v", fe)
	}
}

// TestExplainNextStep: a feature that fires on the step before "Wait, let
// me check" (its state is read where that step ends) is explained by its
// next step's phrases, which tell on held-out steps when it fires, while
// its own step's phrases do not.
func TestExplainNextStep(t *testing.T) {
	var steps []activations.Step
	var rows []float32
	for i := range 400 {
		tr := fmt.Sprintf("t%03d", i)
		wait := i%3 == 0
		texts := []string{fmt.Sprintf("%d + %d = %d.", i, 7, i+7), fmt.Sprintf("%d - %d = %d.", i+7, 3, i+4), fmt.Sprintf("The answer is %d.", i+4)}
		if wait {
			texts[2] = fmt.Sprintf("Wait, let me check: %d - 3 = %d. Yes.", i+7, i+4)
		}
		for s, text := range texts {
			steps = append(steps, activations.Step{Trace: tr, Step: s, Text: text})
			x := []float32{0, 1}
			if wait && s == 1 {
				x[0] = 1
			}
			rows = append(rows, x...)
		}
	}
	d, steps := writeDump(t, "test", 2, rows, steps)
	s, err := sae.New(sae.Standard, 2, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	s.WEnc = []float32{1, 0}
	s.BEnc = []float32{-0.5}
	s.WDec = []float32{1, 0}
	s.BDec = []float32{0, 0}
	s.InputScale = 1
	ex, err := Explain(context.Background(), s, d.Layers[0], steps, ExplainOptions{HoldOut: 0.5, HoldOutSeed: 1})
	if err != nil {
		t.Fatal(err)
	}
	fe := ex.Features[0]
	if fe.Fires != 134 {
		t.Fatalf("the feature fires on %d steps, want 134", fe.Fires)
	}
	if len(fe.Next) == 0 || !slices.ContainsFunc(fe.Next, func(p Phrase) bool { return strings.Contains(p.Text, "wait") || strings.Contains(p.Text, "check") }) {
		t.Errorf("next-step phrases %v: want \"wait\" or \"check\"", fe.Next)
	}
	if nd := fe.NextDetection; nd == nil || nd.F1 < 0.95 {
		t.Errorf("next-step detection %+v, want F1 ≥ 0.95", nd)
	}
	if od := fe.Detection; od != nil && od.F1 > 0.5 {
		t.Errorf("own-step detection %+v: the step's own words should not tell", od)
	}
}

// TestPhrasesLeaveOutNumbers: phrases with a digit (the operands of a
// step) are left out unless asked for.
func TestPhrasesLeaveOutNumbers(t *testing.T) {
	var texts []string
	var traces []string
	for i := range 60 {
		if i < 12 {
			texts = append(texts, "so 59 x 3 = 177 here")
		} else {
			texts = append(texts, fmt.Sprintf("we add %d and %d", i, i+1))
		}
		traces = append(traces, fmt.Sprint("t", i))
	}
	c := NewCorpus(texts, traces, nil)
	rows := []int32{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}
	words, _ := c.phrases(newLogOddsScratch(c), rows, nil, PhraseOptions{Keep: 10, MinZ: 1})
	nums, _ := c.phrases(newLogOddsScratch(c), rows, nil, PhraseOptions{Keep: 10, MinZ: 1, Numbers: true})
	for _, p := range words {
		if strings.ContainsAny(p.Text, "0123456789") {
			t.Errorf("phrase %q has a digit", p.Text)
		}
	}
	if !slices.ContainsFunc(words, func(p Phrase) bool {
		return p.Text == "so" || p.Text == "x" || p.Text == "here" || strings.HasPrefix(p.Text, "so")
	}) {
		t.Errorf("phrases %v: want the examples' words", words)
	}
	if !slices.ContainsFunc(nums, func(p Phrase) bool { return strings.ContainsAny(p.Text, "0123456789") }) {
		t.Errorf("with Numbers, phrases %v: want one with a digit", nums)
	}
}
