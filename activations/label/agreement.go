package label

import (
	"bytes"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Function tags of Thought Anchors chunks (arXiv 2506.19143) that the
// headline figures of an Agreement refer to.
const (
	// TagUncertainty marks chunks that express confusion, re-evaluate or
	// backtrack: the "Wait" class.
	TagUncertainty = "uncertainty_management"
	// TagSelfChecking marks chunks that verify earlier steps.
	TagSelfChecking = "self_checking"
	// TagComputation marks chunks that carry out a computation; keyword
	// labels other than "other" on them are false alarms.
	TagComputation = "active_computation"
)

// Agreement levels.
const (
	ChunkLevel = "chunk"
	StepLevel  = "step"
)

// untagged stands for the tag of a chunk without function tags.
const untagged = "(untagged)"

// An Agreement measures how the keyword labels line up with the GPT-4o
// function tags of Thought Anchors chunks: for every tag, how many of its
// chunks got each behaviour label.
type Agreement struct {
	// Level is ChunkLevel, where each chunk's own text is labelled, or
	// StepLevel, where each chunk gets the labels of the step of the
	// solution that contains it.
	Level string
	// Delimiter is the step delimiter at step level.
	Delimiter string
	// Behaviours are the behaviours of the rules, in order.
	Behaviours []string
	// Tags holds one row per function tag, the most frequent first.
	Tags []TagAgreement
	// All sums every chunk compared, once each (a chunk with several tags
	// appears in several rows of Tags).
	All TagAgreement
	// Traces is the number of traces compared.
	Traces int

	// The fields below are set at step level only.

	// Steps is the number of steps the solutions were cut into.
	Steps int
	// Loose counts chunks that were found in the solution only after
	// ignoring whitespace (typically a chunk that joins two steps with a
	// space where the solution has a blank line).
	Loose int
	// OutOfOrder counts chunks found only before the end of the previous
	// chunk.
	OutOfOrder int
	// Unlocated counts chunks not found in their solution at all; they are
	// left out of Tags and All.
	Unlocated int
	// Spanning counts chunks that overlap more than one step; they get the
	// labels of all the steps they overlap.
	Spanning int
}

// A TagAgreement counts, for the chunks of one function tag, how many got
// each keyword label.
type TagAgreement struct {
	Tag    string
	Chunks int
	// Behaviour[i] counts the chunks labelled with Agreement.Behaviours[i].
	Behaviour []int
	// Any counts the chunks with at least one label other than "other".
	Any int
}

// Share returns n as a fraction of the tag's chunks, or 0 when it has none.
func (t TagAgreement) Share(n int) float64 {
	if t.Chunks == 0 {
		return 0
	}
	return float64(n) / float64(t.Chunks)
}

// Tag returns the row of the function tag, or a row of zeros when no chunk
// has the tag.
func (a *Agreement) Tag(tag string) TagAgreement {
	for _, t := range a.Tags {
		if t.Tag == tag {
			return t
		}
	}
	return TagAgreement{Tag: tag, Behaviour: make([]int, len(a.Behaviours))}
}

// A Headline sums up an Agreement in three shares, each a fraction in [0, 1].
type Headline struct {
	// UncertaintyCaught is the share of uncertainty_management chunks with a
	// label other than "other".
	UncertaintyCaught float64
	// SelfCheckingCaught is the share of self_checking chunks with a label
	// other than "other".
	SelfCheckingCaught float64
	// ComputationFalseAlarms is the share of active_computation chunks that
	// were wrongly given a label other than "other".
	ComputationFalseAlarms float64
}

// Headline returns the headline shares.
func (a *Agreement) Headline() Headline {
	share := func(tag string) float64 { t := a.Tag(tag); return t.Share(t.Any) }
	return Headline{
		UncertaintyCaught:      share(TagUncertainty),
		SelfCheckingCaught:     share(TagSelfChecking),
		ComputationFalseAlarms: share(TagComputation),
	}
}

// ChunkAgreement labels the text of every chunk with m (nil means
// DefaultMatcher) and counts the labels per function tag.
func ChunkAgreement(traces []AnchorTrace, m *Matcher) *Agreement {
	if m == nil {
		m = defaultMatcher
	}
	a := newAgreement(ChunkLevel, m)
	a.Traces = len(traces)
	for _, t := range traces {
		for _, c := range t.Chunks {
			a.add(c.Tags, m.Labels(c.Text))
		}
	}
	a.finish()
	return a
}

// StepAgreement cuts every solution into steps as seg says, labels the steps
// with m (nil means DefaultMatcher), finds every chunk in its solution and
// gives it the labels of the step that contains it (of all the steps it
// overlaps, when it spans a delimiter). Chunks are looked for in order, each
// after the previous one, ignoring differences in whitespace; chunks that
// cannot be found are counted in Unlocated and left out.
func StepAgreement(traces []AnchorTrace, m *Matcher, seg SegmentOptions) *Agreement {
	if m == nil {
		m = defaultMatcher
	}
	a := newAgreement(StepLevel, m)
	a.Traces = len(traces)
	a.Delimiter = seg.Delimiter
	if a.Delimiter == "" {
		a.Delimiter = DefaultDelimiter
	}
	for _, t := range traces {
		text := t.Trace.Response
		steps := Split(text, seg)
		a.Steps += len(steps)
		labels := make([][]string, len(steps))
		for i, s := range steps {
			labels[i] = m.Labels(s.Text)
		}
		loc := newLocator(text)
		cursor := 0
		for _, c := range t.Chunks {
			start, end, ok := loc.find(c.Text, cursor)
			if !ok {
				if start, end, ok = loc.find(c.Text, 0); !ok {
					a.Unlocated++
					continue
				}
				a.OutOfOrder++
			}
			if text[start:end] != strings.TrimSpace(c.Text) {
				a.Loose++
			}
			cursor = end
			// The steps that overlap [start, end).
			first := sort.Search(len(steps), func(i int) bool { return steps[i].End > start })
			var union []string
			n := 0
			for i := first; i < len(steps) && steps[i].Start < end; i++ {
				union = append(union, labels[i]...)
				n++
			}
			if n > 1 {
				a.Spanning++
			}
			a.add(c.Tags, a.order(union))
		}
	}
	a.finish()
	return a
}

func newAgreement(level string, m *Matcher) *Agreement {
	a := &Agreement{Level: level, Behaviours: m.Behaviours()}
	a.All = TagAgreement{Tag: "all chunks", Behaviour: make([]int, len(a.Behaviours))}
	return a
}

// order returns the behaviours among labels, once each and in rules order.
func (a *Agreement) order(labels []string) []string {
	var out []string
	for _, b := range a.Behaviours {
		for _, l := range labels {
			if l == b {
				out = append(out, b)
				break
			}
		}
	}
	return out
}

// add counts one chunk with its tags and labels.
func (a *Agreement) add(tags, labels []string) {
	if len(tags) == 0 {
		tags = []string{untagged}
	}
	a.count(&a.All, labels)
	seen := map[string]bool{}
	for _, tag := range tags {
		if seen[tag] {
			continue
		}
		seen[tag] = true
		i := sort.Search(len(a.Tags), func(i int) bool { return a.Tags[i].Tag >= tag })
		if i == len(a.Tags) || a.Tags[i].Tag != tag {
			a.Tags = append(a.Tags, TagAgreement{})
			copy(a.Tags[i+1:], a.Tags[i:])
			a.Tags[i] = TagAgreement{Tag: tag, Behaviour: make([]int, len(a.Behaviours))}
		}
		a.count(&a.Tags[i], labels)
	}
}

func (a *Agreement) count(t *TagAgreement, labels []string) {
	t.Chunks++
	any := false
	for i, b := range a.Behaviours {
		for _, l := range labels {
			if l == b {
				t.Behaviour[i]++
				any = true
				break
			}
		}
	}
	if any {
		t.Any++
	}
}

// finish sorts the rows: most chunks first, then by tag.
func (a *Agreement) finish() {
	sort.SliceStable(a.Tags, func(i, j int) bool {
		if a.Tags[i].Chunks != a.Tags[j].Chunks {
			return a.Tags[i].Chunks > a.Tags[j].Chunks
		}
		return a.Tags[i].Tag < a.Tags[j].Tag
	})
}

// WriteTable writes the agreement as an aligned text table: a line saying
// what was compared, one row per function tag with its number of chunks and
// how many of them (and what share) got each behaviour label and any label,
// a row for all chunks, and the headline shares.
func (a *Agreement) WriteTable(w io.Writer) error {
	var b bytes.Buffer
	switch a.Level {
	case StepLevel:
		fmt.Fprintf(&b, "Step level: every chunk labelled like the step that contains it (%d traces cut at %s into %d steps).\n",
			a.Traces, strconv.Quote(a.Delimiter), a.Steps)
		located := a.All.Chunks
		fmt.Fprintf(&b, "Chunks located: %d of %d (%d only after ignoring whitespace, %d out of order); %d span several steps.\n",
			located, located+a.Unlocated, a.Loose, a.OutOfOrder, a.Spanning)
	default:
		fmt.Fprintf(&b, "Chunk level: every chunk's own text labelled (%d traces).\n", a.Traces)
	}
	header := []string{"function tag", "chunks"}
	for _, beh := range a.Behaviours {
		header = append(header, beh)
	}
	header = append(header, "any label")
	rows := [][]string{header}
	row := func(t TagAgreement) []string {
		r := []string{t.Tag, strconv.Itoa(t.Chunks)}
		for _, n := range t.Behaviour {
			r = append(r, countShare(n, t.Chunks))
		}
		return append(r, countShare(t.Any, t.Chunks))
	}
	for _, t := range a.Tags {
		rows = append(rows, row(t))
	}
	rows = append(rows, row(a.All))
	if err := writeAligned(&b, rows); err != nil {
		return err
	}
	h := a.Headline()
	fmt.Fprintf(&b, "Caught: %s of %s chunks, %s of %s chunks; false alarms: %s of %s chunks.\n",
		pct(h.UncertaintyCaught), TagUncertainty, pct(h.SelfCheckingCaught), TagSelfChecking,
		pct(h.ComputationFalseAlarms), TagComputation)
	_, err := w.Write(b.Bytes())
	return err
}

func countShare(n, total int) string {
	return fmt.Sprintf("%d %8s", n, "("+percent(n, total)+")")
}

func pct(f float64) string { return strconv.FormatFloat(100*f, 'f', 1, 64) + "%" }

// A locator finds chunks of a text while ignoring whitespace.
type locator struct {
	squeezed []byte // the text without its whitespace
	offsets  []int  // offsets[i] is where squeezed[i] lies in the text
}

func newLocator(text string) *locator {
	sq, off := squeeze(text, true)
	return &locator{squeezed: sq, offsets: off}
}

// squeeze returns the bytes of text without its whitespace and, when asked,
// the offset in text of every byte kept.
func squeeze(text string, offsets bool) ([]byte, []int) {
	sq := make([]byte, 0, len(text))
	var off []int
	if offsets {
		off = make([]int, 0, len(text))
	}
	for i := 0; i < len(text); {
		r, n := utf8.DecodeRuneInString(text[i:])
		if !unicode.IsSpace(r) {
			sq = append(sq, text[i:i+n]...)
			if offsets {
				for k := 0; k < n; k++ {
					off = append(off, i+k)
				}
			}
		}
		i += n
	}
	return sq, off
}

// find returns where chunk first occurs in the text at or after byte offset
// from, comparing everything but whitespace: the occurrence runs from the
// first to the last non-space byte of the chunk.
func (l *locator) find(chunk string, from int) (start, end int, ok bool) {
	sq, _ := squeeze(chunk, false)
	if len(sq) == 0 {
		return 0, 0, false
	}
	q := sort.SearchInts(l.offsets, from)
	i := bytes.Index(l.squeezed[q:], sq)
	if i < 0 {
		return 0, 0, false
	}
	i += q
	return l.offsets[i], l.offsets[i+len(sq)-1] + 1, true
}
