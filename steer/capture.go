package steer

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/rise-interp/rise/activations"
	"github.com/rise-interp/rise/activations/label"
)

// CaptureOptions configure Capture.
type CaptureOptions struct {
	Layers    []int  // blocks whose output is recorded (from 0)
	Delimiter string // step delimiter; "" means "\n\n"
	// Matcher labels the steps; nil means RISE's keyword rules.
	Matcher *label.Matcher
	// Wrap, when not nil, turns a trace's prompt into the model's input (a
	// chat template) and says whether special tokens in it are meant.
	Wrap      func(string) (string, bool)
	Overwrite bool
	// Chunk is the number of tokens run through the model at once; 0
	// means 512.
	Chunk int
	// Progress, when not nil, is told the traces done and their number.
	Progress func(done, total int)
}

// CaptureSummary says what Capture wrote.
type CaptureSummary struct {
	Traces, Steps, Tokens int
	Truncated             int // steps past the model's context, left out
	Labels                map[string]int
}

// Response lengths in tokens that make a trace short or long (RISE,
// Appendix E).
const (
	ShortTokens = 1000
	LongTokens  = 8000
)

// Capture runs every trace (its prompt, then its response) through m and
// writes a rise-activations/1 dump at dir: for each step of a response (cut
// at the delimiter, labelled by the matcher) one row per layer, the
// residual stream after that block at the step's delimiter token (RISE's
// step representation), or at its last token when no delimiter follows.
// steps.jsonl records each step's text, labels, token span and response
// length class.
func Capture(ctx context.Context, m *Model, tok Tokenizer, traces []activations.Trace, dir string, o CaptureOptions) (*CaptureSummary, error) {
	if len(o.Layers) == 0 {
		return nil, fmt.Errorf("capture: no layers to record")
	}
	for _, l := range o.Layers {
		if l < 0 || l >= m.Layers {
			return nil, fmt.Errorf("capture: layer %d: expected a block from 0 to %d", l, m.Layers-1)
		}
	}
	if o.Delimiter == "" {
		o.Delimiter = label.DefaultDelimiter
	}
	if o.Matcher == nil {
		o.Matcher = label.DefaultMatcher()
	}
	if o.Chunk <= 0 {
		o.Chunk = 512
	}
	layers := append([]int(nil), o.Layers...)
	sort.Ints(layers)
	want := map[int]int{}
	for i, l := range layers {
		want[l] = i
	}
	w, err := activations.Create(dir, activations.WriterOptions{Model: m.Name, DModel: m.Dim, Layers: layers,
		Delimiter: o.Delimiter, Overwrite: o.Overwrite})
	if err != nil {
		return nil, err
	}
	sum := &CaptureSummary{Labels: map[string]int{}}
	fail := func(err error) (*CaptureSummary, error) {
		w.Abort()
		return nil, err
	}
	for ti, tr := range traces {
		if err := ctx.Err(); err != nil {
			return fail(err)
		}
		prompt, special := tr.Prompt, false
		if o.Wrap != nil {
			prompt, special = o.Wrap(prompt)
		}
		// The prompt and response are encoded together, as the model saw
		// them; when the tokenizer joins tokens across the seam, they are
		// encoded apart instead.
		pids := withBOS(tok, tok.Encode(prompt, false, special))
		ids := withBOS(tok, tok.Encode(prompt+tr.Response, false, special))
		if len(ids) < len(pids) || !equalInts(ids[:len(pids)], pids) {
			ids = append(append([]int(nil), pids...), tok.Encode(tr.Response, false, false)...)
		}
		rids := ids[len(pids):]
		segs := label.Split(tr.Response, label.SegmentOptions{Delimiter: o.Delimiter})
		// The token that completes each step's delimiter.
		pos := make([]int, len(segs))
		for i, s := range segs {
			target := s.End
			if j := strings.Index(tr.Response[s.End:], o.Delimiter); j >= 0 && strings.TrimSpace(tr.Response[s.End:s.End+j]) == "" {
				target = s.End + j + len(o.Delimiter)
			}
			k := sort.Search(len(rids), func(k int) bool { return len(tok.Decode(rids[:k+1], false)) >= target })
			pos[i] = len(pids) + min(k, len(rids)-1)
		}
		keep := len(segs)
		for keep > 0 && pos[keep-1] >= m.MaxSeq {
			keep--
		}
		sum.Truncated += len(segs) - keep
		segs, pos = segs[:keep], pos[:keep]
		if len(segs) == 0 {
			continue
		}
		need := map[int]int{} // position -> step
		for i, p := range pos {
			need[p] = i
		}
		rows := make([][]float32, len(layers))
		for i := range rows {
			rows[i] = make([]float32, len(segs)*m.Dim)
		}
		hook := func(layer int, h []float32, rs []Row) {
			li, ok := want[layer]
			if !ok {
				return
			}
			for r, row := range rs {
				if st, ok := need[row.Pos]; ok {
					copy(rows[li][st*m.Dim:(st+1)*m.Dim], h[r*m.Dim:(r+1)*m.Dim])
				}
			}
		}
		seq := m.NewSequence()
		seq.PromptLen = len(pids)
		last := pos[len(pos)-1]
		for at := 0; at <= last; at += o.Chunk {
			end := min(last+1, at+o.Chunk)
			if _, err := m.Forward(ctx, []*Sequence{seq}, [][]int{ids[at:end]}, false, hook); err != nil {
				return fail(fmt.Errorf("capture: trace %s: %w", tr.Trace, err))
			}
		}
		for li, l := range layers {
			if err := w.WriteRows(l, rows[li]); err != nil {
				return fail(err)
			}
		}
		length := ""
		switch {
		case len(rids) < ShortTokens:
			length = "short"
		case len(rids) > LongTokens:
			length = "long"
		}
		for i, s := range segs {
			start := len(pids)
			if i > 0 {
				start = pos[i-1] + 1
			}
			end := pos[i] + 1
			st := activations.Step{Trace: tr.Trace, Step: i, Text: s.Text, Labels: o.Matcher.Labels(s.Text),
				TokenStart: &start, TokenEnd: &end,
				Extra: map[string]json.RawMessage{"char_start": json.RawMessage(strconv.Itoa(s.Start)), "char_end": json.RawMessage(strconv.Itoa(s.End))}}
			if length != "" {
				st.Extra["length"] = json.RawMessage(strconv.Quote(length))
			}
			for _, l := range st.Labels {
				sum.Labels[l]++
			}
			if len(st.Labels) == 0 {
				sum.Labels["unlabelled"]++
			}
			if err := w.WriteSteps(st); err != nil {
				return fail(err)
			}
		}
		n := len(rids)
		t := tr
		t.Tokens = &n
		if err := w.WriteTraces(t); err != nil {
			return fail(err)
		}
		sum.Traces++
		sum.Steps += len(segs)
		sum.Tokens += len(ids)
		if o.Progress != nil {
			o.Progress(ti+1, len(traces))
		}
	}
	if sum.Steps == 0 {
		return fail(fmt.Errorf("capture: the traces hold no steps to record"))
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return sum, nil
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
