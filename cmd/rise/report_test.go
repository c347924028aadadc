package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/rise-interp/rise/internal/jsontest"
)

// reportInputs makes a small version of what make steer-demo leaves in
// out/steer-demo, on the tiny reasoning model: traces, a dump of two
// layers, an SAE, an atlas and a map per layer, the sweep over them, a
// steering sweep of an atlas's vector with a control, and a confidence
// vector. It returns the directory and the arguments of rise report.
func reportInputs(t *testing.T) (string, []string) {
	t.Helper()
	dir := t.TempDir()
	tiny := filepath.Join("..", "..", "testdata", "tinyreason")
	m, tok := filepath.Join(tiny, "model.bin"), filepath.Join(tiny, "tok.bin")
	p := func(name string) string { return filepath.Join(dir, name) }
	must := func(args ...string) {
		t.Helper()
		if code, _, stderr := runRise(t, args...); code != 0 {
			t.Fatalf("rise %s: exit %d: %s", strings.Join(args, " "), code, stderr)
		}
	}
	must("traces", "--out", p("traces.jsonl"), "--n", "80", "--seed", "7")
	must("dump", "--model", m, "--tokenizer", tok, "--traces", p("traces.jsonl"), "--layers", "1,2", "--out", p("dump"), "--force")
	for _, l := range []string{"1", "2"} {
		must("train", "--data", p("dump"), "--layer", l, "--arch", "topk", "--k", "4", "--width", "64", "--steps", "80", "--batch", "64", "--out", p("sae-l"+l))
		must("atlas", "--sae", p("sae-l"+l), "--data", p("dump"), "--layout", "pca", "--out", p("atlas-l"+l+".json"))
	}
	must("atlas", "--sweep", "--data", p("dump"), "--sae", p("sae-l1"), "--sae", p("sae-l2"), "--out", p("sweep.json"))
	// Steer with the first behaviour vector the layer-1 atlas has.
	var a struct {
		Behaviours map[string]struct {
			Vector []float64 `json:"vector"`
		} `json:"behaviours"`
	}
	jsontest.ReadFile(t, p("atlas-l1.json"), &a)
	var behaviour string
	for _, name := range slices.Sorted(maps.Keys(a.Behaviours)) {
		if len(a.Behaviours[name].Vector) > 0 {
			behaviour = name
			break
		}
	}
	if behaviour == "" {
		t.Fatal("the layer-1 atlas has no behaviour vector to steer with")
	}
	spec := fmt.Sprintf(`{"vectors": [{"source": "atlas:%s#%s", "layer": 1, "op": "add", "strength": 1, "positions": "step_boundary"}]}`, p("atlas-l1.json"), behaviour)
	if err := os.WriteFile(p("spec.json"), []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	must("traces", "--prompts", "--out", p("heldout.jsonl"), "--n", "4", "--seed", "99")
	must("steer", "--model", m, "--tokenizer", tok, "--steer", p("spec.json"), "--alphas=-4,0,4", "--prompts", p("heldout.jsonl"),
		"--max-tokens", "30", "--temperature", "1", "--seed", "1", "--controls", "1", "--out", p("results.json"))
	must("confidence", "--model", m, "--tokenizer", tok, "--sae", p("sae-l1"), "--layer", "1", "--traces", p("traces.jsonl"), "--prompts", p("heldout.jsonl"),
		"--limit", "1", "--max-tokens", "10", "--iters", "5", "--batch", "8", "--states", "20", "--eval-traces", "2", "--out", p("conf.json"))
	return dir, []string{"report", "--data", p("dump"), "--sae", p("sae-l1"), "--sae", p("sae-l2"), "--model", m,
		"--atlas", p("atlas-l1.json"), "--atlas", p("atlas-l2.json"), "--sweep", p("sweep.json"), "--steer", p("results.json"),
		"--confidence", p("conf.json"), "--out", p("report.html")}
}

// reportFigures is the figures the inputs of reportInputs imply: a
// training curve per SAE, a map per atlas, the separation over two layers,
// the dose-response of the sweep and the confidence vector's entropy curve.
var reportFigures = map[string]int{"training": 2, "map": 2, "separation": 1, "dose": 1, "confidence": 1}

// TestReport makes the inputs once and checks the report against them:
// its numbers against the files they come from (read here with
// encoding/json, not rise's readers), its figures, that it asks for
// nothing from the network (TestReport/browser), that two runs give the same
// bytes, and its errors.
func TestReport(t *testing.T) {
	dir, args := reportInputs(t)
	out := filepath.Join(dir, "report.html")
	code, stdout, stderr := runRise(t, args...)
	if code != 0 {
		t.Fatalf("report: exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, "(7 figures)") {
		t.Errorf("report output %q, want 7 figures", stdout)
	}
	html, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(filepath.Join(dir, "report.md"))
	if err != nil {
		t.Fatal(err)
	}

	t.Run("figures", func(t *testing.T) {
		kinds := map[string]int{}
		for _, m := range regexp.MustCompile(`<figure id="figure-\d+" class="figure" data-kind="(\w+)">\n<svg`).FindAllSubmatch(html, -1) {
			kinds[string(m[1])]++
		}
		if fmt.Sprint(kinds) != fmt.Sprint(reportFigures) {
			t.Errorf("figures with an inline SVG by kind %v, want %v", kinds, reportFigures)
		}
		if n := bytes.Count(md, []byte("(drawn in the HTML report)")); n != 7 {
			t.Errorf("report.md names %d figures, want 7", n)
		}
	})

	t.Run("self-contained", func(t *testing.T) {
		// Nothing in the page may name another resource: no script, no
		// link, no source, no url(), no import; links only to its own
		// sections.
		for _, re := range []string{`(?i)<script`, `(?i)<link`, `(?i)<img`, `(?i)<iframe`, `(?i)\ssrc\s*=`, `(?i)url\(`, `(?i)@import`, `(?i)href\s*=\s*"[^#]`, `(?i)xlink:href`} {
			if loc := regexp.MustCompile(re).FindIndex(html); loc != nil {
				t.Errorf("report.html has %s: %q", re, html[max(0, loc[0]-40):min(len(html), loc[1]+40)])
			}
		}
	})

	t.Run("labels", func(t *testing.T) {
		// The dump's label counts, counted here from steps.jsonl.
		f, err := os.Open(filepath.Join(dir, "dump", "steps.jsonl"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		counts := map[string]int{}
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 1<<20)
		n := 0
		for sc.Scan() {
			var s struct {
				Labels []string `json:"labels"`
			}
			if err := json.Unmarshal(sc.Bytes(), &s); err != nil {
				t.Fatal(err)
			}
			n++
			for _, l := range s.Labels {
				counts[l]++
			}
		}
		for l, c := range counts {
			want := fmt.Sprintf("| %s | %d | %.1f%% |", l, c, 100*float64(c)/float64(n))
			if !bytes.Contains(md, []byte(want)) {
				t.Errorf("report.md lacks the label row %q", want)
			}
		}
	})

	t.Run("steering", func(t *testing.T) {
		var res struct {
			Runs []struct {
				Strength   float64 `json:"strength"`
				Behaviours map[string]struct {
					Mean, Lo, Hi float64
				} `json:"behaviours"`
				PValues map[string]float64 `json:"p_values"`
			} `json:"runs"`
			ControlBand map[string]struct{ Lo, Hi []float64 } `json:"control_band"`
		}
		jsontest.ReadFile(t, filepath.Join(dir, "results.json"), &res)
		if len(res.Runs) != 3 || len(res.ControlBand) == 0 {
			t.Fatalf("results.json has %d runs and %d control bands", len(res.Runs), len(res.ControlBand))
		}
		for i, r := range res.Runs {
			for _, b := range []string{"reflection", "backtracking"} {
				iv := r.Behaviours[b]
				cell := fmt.Sprintf("| %.3f [%.3f, %.3f] | ", iv.Mean, iv.Lo, iv.Hi)
				if r.Strength != 0 {
					cell += fmt.Sprintf("%.3g | ", r.PValues[b])
				} else {
					cell += "- | "
				}
				band := res.ControlBand[b]
				cell += fmt.Sprintf("[%.3f, %.3f] ", band.Lo[i], band.Hi[i])
				if !bytes.Contains(md, []byte(cell)) {
					t.Errorf("strength %g, %s: report.md lacks %q", r.Strength, b, cell)
				}
			}
		}
	})

	t.Run("cosines", func(t *testing.T) {
		// The cosine of the two layers' first behaviour vectors, computed
		// here in float64 from atlas.json.
		first := func(path string) (string, []float64) {
			var a struct {
				Behaviours map[string]struct {
					Vector []float64 `json:"vector"`
				} `json:"behaviours"`
			}
			jsontest.ReadFile(t, path, &a)
			for _, name := range slices.Sorted(maps.Keys(a.Behaviours)) {
				if v := a.Behaviours[name].Vector; len(v) > 0 {
					return name, v
				}
			}
			return "", nil
		}
		n1, v1 := first(filepath.Join(dir, "atlas-l1.json"))
		n2, v2 := first(filepath.Join(dir, "atlas-l2.json"))
		if v1 == nil || v2 == nil {
			t.Skip("an atlas has no behaviour vector")
		}
		var dot, a, b float64
		for i := range v1 {
			dot, a, b = dot+v1[i]*v2[i], a+v1[i]*v1[i], b+v2[i]*v2[i]
		}
		cos := dot / math.Sqrt(a*b)
		// The table's rows name the vectors; find the two and read the cell.
		row := regexp.MustCompile(`(?m)^\| v(\d+) ` + regexp.QuoteMeta(filepath.Join(dir, "atlas-l1.json")+"#"+n1) + ` \|(.*)$`).FindSubmatch(md)
		col := regexp.MustCompile(`(?m)^\| v(\d+) ` + regexp.QuoteMeta(filepath.Join(dir, "atlas-l2.json")+"#"+n2) + ` \|`).FindSubmatch(md)
		if row == nil || col == nil {
			t.Fatalf("report.md has no cosine rows for %s and %s", n1, n2)
		}
		var j int
		fmt.Sscan(string(col[1]), &j)
		cells := strings.Split(string(row[2]), "|")
		if got, want := strings.TrimSpace(cells[j-1]), fmt.Sprintf("%.3f", cos); got != want {
			t.Errorf("cosine of %s (layer 1) and %s (layer 2): report %s, computed %s", n1, n2, got, want)
		}
	})

	t.Run("reproducible", func(t *testing.T) {
		if code, _, stderr := runRise(t, args...); code != 0 {
			t.Fatalf("second report: exit %d: %s", code, stderr)
		}
		html2, _ := os.ReadFile(out)
		md2, _ := os.ReadFile(filepath.Join(dir, "report.md"))
		if !bytes.Equal(html, html2) || !bytes.Equal(md, md2) {
			t.Errorf("a second run from the same inputs wrote other bytes (HTML %d vs %d, Markdown %d vs %d)", len(html), len(html2), len(md), len(md2))
		}
		if !bytes.Contains(md, []byte(versionString())) {
			t.Errorf("report.md does not give the version %q", versionString())
		}
	})

	t.Run("errors", func(t *testing.T) {
		bad := filepath.Join(dir, "bad.json")
		os.WriteFile(bad, []byte(`{"format": "rise-steer/1", "runs": [{"strength": 1}]}`), 0o644)
		other := filepath.Join(dir, "other.json")
		os.WriteFile(other, []byte(`{"format": "rise-sweep/1", "layers": []}`), 0o644)
		data := filepath.Join(dir, "dump")
		for _, tc := range []struct {
			args []string
			code int
			want string
		}{
			{[]string{"--out", out}, 2, "--data and --out are required"},
			{[]string{"--data", data, "--steer", bad, "--out", out}, 1, `bad.json: runs[0] (strength 1): field "behaviours"`},
			{[]string{"--data", data, "--steer", other, "--out", out}, 1, `other.json: field "format": expected "rise-steer/1", found "rise-sweep/1"`},
			{[]string{"--data", data, "--sweep", other, "--out", out}, 1, `other.json: field "layers": expected at least one layer`},
			{[]string{"--data", data, "--confidence", filepath.Join(dir, "missing.json"), "--out", out}, 1, "missing.json"},
			{[]string{"--data", data, "--eval-rows", "0", "--out", out}, 2, "--eval-rows: expected at least 1"},
		} {
			code, _, stderr := runRise(t, append([]string{"report"}, tc.args...)...)
			if code != tc.code || !strings.Contains(stderr, tc.want) || strings.Count(strings.TrimSpace(stderr), "\n") > 0 {
				t.Errorf("%v: exit %d, %q; want %d and one line with %q", tc.args, code, stderr, tc.code, tc.want)
			}
		}
	})

	t.Run("browser", func(t *testing.T) { checkReportInBrowser(t, out) })
}
