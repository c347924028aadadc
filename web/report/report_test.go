package report

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rise-interp/rise/sae/atlas"
	"github.com/rise-interp/rise/steer"
)

// tinyDump is the project's committed fixture (rise synth, 400 rows, d_model 16).
var tinyDump = filepath.Join("..", "..", "testdata", "tiny")

// hostile is a label that would be markup, and a request, if written as it is.
const hostile = `<img src="http://127.0.0.1:1/x.png">|x`

// atlasWithLabel is a small atlas whose one behaviour bears the label.
func atlasWithLabel(label string) *atlas.Atlas {
	a := &atlas.Atlas{Format: atlas.AtlasFormat, Layout: "pca", DIn: 2, DSae: 4, Behaviours: map[string]atlas.BehaviourInfo{
		label: {Steps: 3, Columns: []int{1, 2}, Vector: []float32{0.6, 0.8}},
	}}
	for i := range 4 {
		a.Features = append(a.Features, atlas.Feature{ID: i, X: float64(i), Y: float64(i * i)})
	}
	return a
}

// TestLabelsAreText gives the report an atlas and a steering sweep whose
// names are markup: the page must show them as text (in tables and in the
// SVG the charts draw, which go-chart writes unescaped) and Markdown must
// keep its table cells.
func TestLabelsAreText(t *testing.T) {
	iv := steer.Interval{Mean: 1, Lo: 0.5, Hi: 1.5}
	run := func(a float64) steer.Run {
		return steer.Run{Strength: a, Behaviours: map[string]steer.Interval{"reflection": iv, "backtracking": iv, "other": iv}}
	}
	r, err := Build(context.Background(), Inputs{Data: tinyDump,
		NamedAtlases: []NamedAtlas{{Name: hostile, Atlas: atlasWithLabel(hostile)}},
		SteerValues:  []NamedSteering{{Name: hostile, Command: hostile, Steering: &Steering{Format: SteerFormat, Runs: []steer.Run{run(-1), run(0), run(1)}}}}})
	if err != nil {
		t.Fatal(err)
	}
	var h, md bytes.Buffer
	if err := r.WriteHTML(&h); err != nil {
		t.Fatal(err)
	}
	if err := r.WriteMarkdown(&md); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(h.String(), "<img") {
		i := strings.Index(h.String(), "<img")
		t.Errorf("a label became markup in the page: %q", h.String()[max(0, i-80):i+60])
	}
	if n := strings.Count(h.String(), "&lt;img"); n < 4 {
		t.Errorf("the label is shown as text %d times, want it in the headings, the table and the map's legend", n)
	}
	if r.Figures() != 2 {
		t.Errorf("%d figures, want the map and the dose curve", r.Figures())
	}
	if !strings.Contains(md.String(), `| v1 &lt;img src="http://127.0.0.1:1/x.png">\|x#&lt;img`) {
		t.Errorf("report.md does not escape the label in its cosine table:\n%s", md.String())
	}
}

// TestBadInputs checks the one-line errors for files that are not what
// they claim to be.
func TestBadInputs(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	band := write("band.json", `{"format": "rise-steer/1", "runs": [{"strength": 0, "behaviours": {"reflection": {"mean": 1, "lo": 1, "hi": 1}}}], "control_band": {"reflection": {"lo": [1, 2], "hi": [1, 2]}}}`)
	null := write("null.json", `{"format": "rise-sweep/1", "layers": [null]}`)
	notJSON := write("conf.json", `{"format": `)
	bad := atlasWithLabel("reflection")
	bad.Behaviours["reflection"] = atlas.BehaviourInfo{Columns: []int{7}}
	for _, tc := range []struct {
		in   Inputs
		want string
	}{
		{Inputs{}, "expected the activation dump"},
		{Inputs{Data: tinyDump, Steer: []string{band}}, `band.json: control_band["reflection"]: expected 1 strengths, found 2 lows and 2 highs`},
		{Inputs{Data: tinyDump, Sweep: null}, "null.json: layers[0]: expected an object, found null"},
		{Inputs{Data: tinyDump, Confidence: []string{notJSON}}, "conf.json: expected rise-confidence/1 JSON"},
		{Inputs{Data: tinyDump, NamedAtlases: []NamedAtlas{{Name: "a", Atlas: bad}}}, `atlas a: behaviours["reflection"].columns: expected columns 0 to 3, found 7`},
		{Inputs{Data: tinyDump, SAEs: []string{filepath.Join(dir, "none")}}, "none"},
		{Inputs{Data: filepath.Join(dir, "nodump")}, "nodump"},
	} {
		_, err := Build(context.Background(), tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%+v: error %v, want one line with %q", tc.in, err, tc.want)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Build(ctx, Inputs{Data: tinyDump}); err == nil {
		t.Error("a cancelled build succeeded")
	}
}

// TestMissingBehaviour: a sweep whose runs count no reflection (labels of
// another scheme) shows "-" for it, not zeros, and draws no curve of it.
func TestMissingBehaviour(t *testing.T) {
	iv := steer.Interval{Mean: 2, Lo: 1, Hi: 3}
	runs := []steer.Run{{Strength: -1, Behaviours: map[string]steer.Interval{"other": iv}}, {Strength: 1, Behaviours: map[string]steer.Interval{"other": iv}}}
	r, err := Build(context.Background(), Inputs{Data: tinyDump, SteerValues: []NamedSteering{{Name: "s", Steering: &Steering{Format: SteerFormat, Runs: runs}}}})
	if err != nil {
		t.Fatal(err)
	}
	var md bytes.Buffer
	r.WriteMarkdown(&md)
	if want := "| -1 | - | - | - | - | - | - | 2.000 [1.000, 3.000] |"; !strings.Contains(md.String(), want) {
		t.Errorf("report.md lacks %q:\n%s", want, md.String())
	}
	if r.Figures() != 0 {
		t.Errorf("%d figures, want none (no behaviour the dose curve draws)", r.Figures())
	}
}
