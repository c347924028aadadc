package label

import (
	"bytes"
	"reflect"
	"strings"
	"testing"

	"github.com/rise-interp/rise/activations"
)

func TestLabelTraces(t *testing.T) {
	traces := []activations.Trace{
		{Trace: "t0", Response: "Let x = 2.\n\nWait, let me check. Alternatively, x = 3.\n\n\n\nSo the answer is 2."},
		{Trace: "t1", Response: ""},
		{Trace: "t2", Response: "  Hold on.  "},
	}
	steps := LabelTraces(traces, Options{})
	type row struct {
		trace  string
		step   int
		text   string
		labels []string
		start  string
		end    string
	}
	var got []row
	for _, s := range steps {
		got = append(got, row{s.Trace, s.Step, s.Text, s.Labels, string(s.Extra["char_start"]), string(s.Extra["char_end"])})
		if _, ok := s.Extra["paragraph"]; ok {
			t.Errorf("step %d of %s has a paragraph field without sentence splitting", s.Step, s.Trace)
		}
	}
	want := []row{
		{"t0", 0, "Let x = 2.", []string{Other}, "0", "10"},
		{"t0", 1, "Wait, let me check. Alternatively, x = 3.", []string{Reflection, Backtracking}, "12", "53"},
		{"t0", 2, "So the answer is 2.", []string{Other}, "57", "76"},
		{"t2", 0, "Hold on.", []string{Reflection}, "2", "10"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("LabelTraces =\n%+v\nwant\n%+v", got, want)
	}

	// Sentences, a custom delimiter and custom rules.
	m := Rules{{Behaviour: "doubt", Phrases: []string{"hmm"}}}.MustCompile()
	steps = LabelTraces([]activations.Trace{{Trace: "a", Response: "Hmm. So x = 1.|Then y."}},
		Options{SegmentOptions: SegmentOptions{Delimiter: "|", Sentences: true}, Matcher: m})
	var texts, paras []string
	for _, s := range steps {
		texts = append(texts, s.Text+"="+strings.Join(s.Labels, "+"))
		paras = append(paras, string(s.Extra["paragraph"]))
	}
	if want := []string{"Hmm.=doubt", "So x = 1.=other", "Then y.=other"}; !reflect.DeepEqual(texts, want) {
		t.Errorf("sentence steps = %q, want %q", texts, want)
	}
	if want := []string{"0", "0", "1"}; !reflect.DeepEqual(paras, want) {
		t.Errorf("paragraphs = %q, want %q", paras, want)
	}
}

func TestLabelStepsKeepsGivenLabels(t *testing.T) {
	mk := func() []activations.Step {
		return []activations.Step{
			{Trace: "a", Step: 0, Text: "Wait, no.", Labels: []string{"judge-uncertainty"}},
			{Trace: "a", Step: 1, Text: "Wait, no."},
			{Trace: "a", Step: 2, Text: "x = 4", Labels: []string{}},
			{Trace: "a", Step: 3, Text: "Alternatively, wait."},
		}
	}
	steps := mk()
	r := LabelSteps(steps, nil, true)
	got := [][]string{steps[0].Labels, steps[1].Labels, steps[2].Labels, steps[3].Labels}
	want := [][]string{{"judge-uncertainty"}, {Reflection}, {Other}, {Reflection, Backtracking}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("LabelSteps(keep) labels = %q, want %q", got, want)
	}
	if r.Steps != 4 || r.Kept != 1 || r.Keyword != 3 || r.Unlabelled != 0 {
		t.Errorf("report = %+v, want 4 steps, 1 kept, 3 keyword-labelled", r)
	}
	wantCounts := []LabelCount{{Reflection, 2}, {Backtracking, 1}, {Other, 1}, {"judge-uncertainty", 1}}
	if !reflect.DeepEqual(r.Labels, wantCounts) {
		t.Errorf("counts = %+v, want %+v", r.Labels, wantCounts)
	}
	if r.Count(Reflection) != 2 || r.Count("nope") != 0 {
		t.Errorf("Count = %d, %d", r.Count(Reflection), r.Count("nope"))
	}

	steps = mk()
	r = LabelSteps(steps, nil, false)
	if !reflect.DeepEqual(steps[0].Labels, []string{Reflection}) || r.Kept != 0 || r.Keyword != 4 {
		t.Errorf("LabelSteps(overwrite): first step labels %q, report %+v", steps[0].Labels, r)
	}

	var b bytes.Buffer
	if err := r.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	wantTable := "" +
		"label         steps  share\n" +
		"reflection        3  75.0%\n" +
		"backtracking      1  25.0%\n" +
		"other             1  25.0%\n" +
		"all steps         4\n"
	if b.String() != wantTable {
		t.Errorf("WriteTable =\n%s\nwant\n%s", b.String(), wantTable)
	}
}

func TestCountLabelsUnlabelled(t *testing.T) {
	r := CountLabels([]activations.Step{{Text: "x"}, {Text: "y", Labels: []string{"b"}}}, []string{"a"})
	want := []LabelCount{{"a", 0}, {Other, 0}, {"b", 1}}
	if !reflect.DeepEqual(r.Labels, want) || r.Unlabelled != 1 {
		t.Errorf("CountLabels = %+v, want labels %+v and 1 unlabelled", r, want)
	}
	var b bytes.Buffer
	r.WriteTable(&b)
	if !strings.Contains(b.String(), "(unlabelled)      1  50.0%") {
		t.Errorf("WriteTable lacks the unlabelled row:\n%s", b.String())
	}
}
