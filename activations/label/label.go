package label

import (
	"encoding/json"
	"io"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/rise-interp/rise/activations"
)

// Options says how LabelTraces cuts responses into steps and labels them.
type Options struct {
	SegmentOptions
	// Matcher labels the steps; nil means DefaultMatcher.
	Matcher *Matcher
}

func (o Options) matcher() *Matcher {
	if o.Matcher == nil {
		return defaultMatcher
	}
	return o.Matcher
}

// LabelTraces cuts the response of every trace into steps and labels each
// step with the matcher's behaviours. Steps are returned trace by trace, in
// order, numbered from 0 within their trace. Every step records where its
// text lies in the response as the extra fields "char_start" and "char_end"
// (byte offsets, end exclusive); with sentence splitting it also records the
// index of its delimited piece as "paragraph". Token offsets are left unset:
// they depend on the model's tokenizer.
func LabelTraces(traces []activations.Trace, opts Options) []activations.Step {
	m := opts.matcher()
	var steps []activations.Step
	for _, t := range traces {
		for i, seg := range Split(t.Response, opts.SegmentOptions) {
			extra := map[string]json.RawMessage{
				"char_start": rawInt(seg.Start),
				"char_end":   rawInt(seg.End),
			}
			if opts.Sentences {
				extra["paragraph"] = rawInt(seg.Paragraph)
			}
			steps = append(steps, activations.Step{
				Trace:  t.Trace,
				Step:   i,
				Text:   seg.Text,
				Labels: m.Labels(seg.Text),
				Extra:  extra,
			})
		}
	}
	return steps
}

func rawInt(n int) json.RawMessage { return json.RawMessage(strconv.Itoa(n)) }

// LabelSteps labels steps in place with the matcher's behaviours (nil means
// DefaultMatcher). With keep, a step that already has labels, for example
// from an LLM judge, keeps them as given and only unlabelled steps get
// keyword labels; without keep every step is labelled anew. It returns a
// count of the labels.
func LabelSteps(steps []activations.Step, m *Matcher, keep bool) Report {
	if m == nil {
		m = defaultMatcher
	}
	kept := 0
	for i := range steps {
		if keep && len(steps[i].Labels) > 0 {
			kept++
			continue
		}
		steps[i].Labels = m.Labels(steps[i].Text)
	}
	r := CountLabels(steps, m.Behaviours())
	r.Kept = kept
	r.Keyword = len(steps) - kept
	return r
}

// A Report counts the labels of a set of steps.
type Report struct {
	Steps   int // steps counted
	Kept    int // steps whose labels were kept as given
	Keyword int // steps labelled by the keyword rules
	// Labels lists how many steps carry each label: the behaviours of the
	// rules in order, then "other", then any further labels found in the
	// steps, by name. A step with several labels counts once for each.
	Labels []LabelCount
	// Unlabelled counts steps without any label.
	Unlabelled int
}

// A LabelCount is the number of steps that carry a label.
type LabelCount struct {
	Label string
	Steps int
}

// CountLabels counts how many steps carry each label. The behaviours and
// "other" are always listed, in that order, even when no step carries them.
func CountLabels(steps []activations.Step, behaviours []string) Report {
	counts := map[string]int{}
	r := Report{Steps: len(steps)}
	for i := range steps {
		if len(steps[i].Labels) == 0 {
			r.Unlabelled++
		}
		for _, l := range steps[i].Labels {
			counts[l]++
		}
	}
	listed := map[string]bool{}
	for _, b := range append(append([]string(nil), behaviours...), Other) {
		if !listed[b] {
			listed[b] = true
			r.Labels = append(r.Labels, LabelCount{Label: b, Steps: counts[b]})
		}
	}
	var rest []string
	for l := range counts {
		if !listed[l] {
			rest = append(rest, l)
		}
	}
	sort.Strings(rest)
	for _, l := range rest {
		r.Labels = append(r.Labels, LabelCount{Label: l, Steps: counts[l]})
	}
	return r
}

// Count returns how many steps carry label.
func (r Report) Count(label string) int {
	for _, c := range r.Labels {
		if c.Label == label {
			return c.Steps
		}
	}
	return 0
}

// WriteTable writes the counts as an aligned text table: one row per label
// with its number of steps and their share of all steps.
func (r Report) WriteTable(w io.Writer) error {
	rows := [][]string{{"label", "steps", "share"}}
	for _, c := range r.Labels {
		rows = append(rows, []string{c.Label, strconv.Itoa(c.Steps), percent(c.Steps, r.Steps)})
	}
	if r.Unlabelled > 0 {
		rows = append(rows, []string{"(unlabelled)", strconv.Itoa(r.Unlabelled), percent(r.Unlabelled, r.Steps)})
	}
	rows = append(rows, []string{"all steps", strconv.Itoa(r.Steps), ""})
	return writeAligned(w, rows)
}

// writeAligned writes rows as a table with the first column aligned left and
// the others aligned right, two spaces apart.
func writeAligned(w io.Writer, rows [][]string) error {
	var widths []int
	for _, row := range rows {
		for j, cell := range row {
			if j >= len(widths) {
				widths = append(widths, 0)
			}
			widths[j] = max(widths[j], utf8.RuneCountInString(cell))
		}
	}
	var b strings.Builder
	for _, row := range rows {
		var line strings.Builder
		for j, cell := range row {
			pad := strings.Repeat(" ", widths[j]-utf8.RuneCountInString(cell))
			switch {
			case j == 0:
				line.WriteString(cell + pad)
			default:
				line.WriteString("  " + pad + cell)
			}
		}
		b.WriteString(strings.TrimRight(line.String(), " "))
		b.WriteByte('\n')
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// percent formats n/total as a percentage with one decimal, or "-" when
// total is 0.
func percent(n, total int) string {
	if total == 0 {
		return "-"
	}
	return strconv.FormatFloat(100*float64(n)/float64(total), 'f', 1, 64) + "%"
}
