package steer

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/rise-interp/rise/internal/inputerr"
	"github.com/rise-interp/rise/steer/model"

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
	// Model names the model in the dump's manifest; "" means the model's
	// own name.
	Model string
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

// StepRecord is one captured step: where it lies in its response's text
// and tokens.
type StepRecord struct {
	Trace      string `json:"trace"`
	Step       int    `json:"step"`
	Text       string `json:"text"`
	CharStart  int    `json:"char_start"`
	CharEnd    int    `json:"char_end"`
	TokenStart int    `json:"token_start"` // first token of the step in the trace's tokens
	TokenEnd   int    `json:"token_end"`   // one past the token whose state is recorded
}

// TraceRecord is what capturing one trace gives: its steps and, per layer
// (in increasing order), one row of d_model values per step.
type TraceRecord struct {
	Trace          activations.Trace
	ResponseTokens int
	Steps          []StepRecord
	Rows           [][]float32
	Truncated      int

	seq *model.Sequence // the trace's run, keys and values cached (for confidence vectors)
}

// lengthClass names a response's length by RISE's thresholds, or "".
func lengthClass(tokens int) string {
	switch {
	case tokens < ShortTokens:
		return "short"
	case tokens > LongTokens:
		return "long"
	}
	return ""
}

// normalise checks and completes capture options for a model of the given
// number of blocks, returning the layers in increasing order.
func (o *CaptureOptions) normalise(blocks int) ([]int, error) {
	if len(o.Layers) == 0 {
		return nil, inputerr.Errorf("capture: no layers to record")
	}
	seen := map[int]bool{}
	for _, l := range o.Layers {
		if l < 0 || l >= blocks {
			return nil, inputerr.Errorf("capture: layer %d: expected a block from 0 to %d", l, blocks-1)
		}
		if seen[l] {
			return nil, inputerr.Errorf("capture: layer %d is given twice", l)
		}
		seen[l] = true
	}
	o.Delimiter = cmp.Or(o.Delimiter, label.DefaultDelimiter)
	if o.Matcher == nil {
		o.Matcher = label.DefaultMatcher()
	}
	if o.Chunk <= 0 {
		o.Chunk = 512
	}
	layers := append([]int(nil), o.Layers...)
	sort.Ints(layers)
	return layers, nil
}

// stepStates encodes a trace as the model reads it (its prompt, wrapped
// when o says so, then its response), cuts the response into steps at the
// delimiter, and returns the ids, the prompt's length in tokens, the steps
// and, per step, the position of the token whose state is the step's: the
// one that completes the delimiter after it, or the step's last token when
// no delimiter follows. o must be normalised.
func stepStates(tok model.Tokenizer, tr activations.Trace, o CaptureOptions) (ids []int, promptLen int, segs []label.Segment, pos []int) {
	prompt, special := tr.Prompt, false
	if o.Wrap != nil {
		prompt, special = o.Wrap(prompt)
	}
	// The prompt and response are encoded together, as the model saw
	// them; when the tokenizer joins tokens across the seam, they are
	// encoded apart instead.
	pids := model.WithBOS(tok, tok.Encode(prompt, false, special))
	promptLen = len(pids)
	ids = model.WithBOS(tok, tok.Encode(prompt+tr.Response, false, special))
	if len(ids) < promptLen || !slices.Equal(ids[:promptLen], pids) {
		ids = append(append([]int(nil), pids...), tok.Encode(tr.Response, false, false)...)
	}
	rids := ids[promptLen:]
	segs = label.Split(tr.Response, label.SegmentOptions{Delimiter: o.Delimiter})
	pos = make([]int, len(segs))
	for i, s := range segs {
		target := s.End
		if j := strings.Index(tr.Response[s.End:], o.Delimiter); j >= 0 && strings.TrimSpace(tr.Response[s.End:s.End+j]) == "" {
			target = s.End + j + len(o.Delimiter)
		}
		k := sort.Search(len(rids), func(k int) bool { return len(tok.Decode(rids[:k+1], false)) >= target })
		pos[i] = promptLen + min(k, len(rids)-1)
	}
	return ids, promptLen, segs, pos
}

// CaptureRecords runs every trace (its prompt, then its response) through
// m and hands emit, trace by trace, the steps of the response (cut at the
// delimiter) with the residual stream after each layer at the token that
// completes each step's delimiter (RISE's step representation), or at its
// last token when no delimiter follows. Traces without steps are skipped.
func CaptureRecords(ctx context.Context, m *model.Model, tok model.Tokenizer, traces []activations.Trace, o CaptureOptions, emit func(TraceRecord) error) error {
	layers, err := o.normalise(m.Layers)
	if err != nil {
		return err
	}
	want := map[int]int{}
	for i, l := range layers {
		want[l] = i
	}
	for ti, tr := range traces {
		if err := ctx.Err(); err != nil {
			return err
		}
		ids, promptLen, segs, pos := stepStates(tok, tr, o)
		rids := ids[promptLen:]
		keep := len(segs)
		for keep > 0 && pos[keep-1] >= m.MaxSeq {
			keep--
		}
		rec := TraceRecord{Trace: tr, ResponseTokens: len(rids), Truncated: len(segs) - keep, seq: m.NewSequence()}
		segs, pos = segs[:keep], pos[:keep]
		if len(segs) == 0 {
			if o.Progress != nil {
				o.Progress(ti+1, len(traces))
			}
			continue
		}
		need := map[int]int{} // position -> step
		for i, p := range pos {
			need[p] = i
		}
		rec.Rows = make([][]float32, len(layers))
		for i := range rec.Rows {
			rec.Rows[i] = make([]float32, len(segs)*m.Dim)
		}
		hook := func(layer int, h []float32, rs []model.Row) {
			li, ok := want[layer]
			if !ok {
				return
			}
			for r, row := range rs {
				if st, ok := need[row.Pos]; ok {
					copy(rec.Rows[li][st*m.Dim:(st+1)*m.Dim], h[r*m.Dim:(r+1)*m.Dim])
				}
			}
		}
		seq := rec.seq
		seq.PromptLen = promptLen
		last := pos[len(pos)-1]
		for at := 0; at <= last; at += o.Chunk {
			end := min(last+1, at+o.Chunk)
			if _, err := m.Forward(ctx, []*model.Sequence{seq}, [][]int{ids[at:end]}, false, hook); err != nil {
				return fmt.Errorf("capture: trace %s: %w", tr.Trace, err)
			}
		}
		for i, s := range segs {
			start := promptLen
			if i > 0 {
				start = pos[i-1] + 1
			}
			rec.Steps = append(rec.Steps, StepRecord{Trace: tr.Trace, Step: i, Text: s.Text, CharStart: s.Start, CharEnd: s.End,
				TokenStart: start, TokenEnd: pos[i] + 1})
		}
		if err := emit(rec); err != nil {
			return err
		}
		if o.Progress != nil {
			o.Progress(ti+1, len(traces))
		}
	}
	return nil
}

// DumpSink writes trace records as a rise-activations/1 dump, labelling
// each step by the keyword rules and recording its response's length
// class.
type DumpSink struct {
	w       *activations.Writer
	layers  []int
	dim     int
	matcher *label.Matcher
	sum     CaptureSummary
}

// NewDumpSink starts a dump at dir for rows of dim values from the given
// layers (in increasing order).
func NewDumpSink(dir, model string, dim int, layers []int, o CaptureOptions) (*DumpSink, error) {
	o.Delimiter = cmp.Or(o.Delimiter, label.DefaultDelimiter)
	if o.Matcher == nil {
		o.Matcher = label.DefaultMatcher()
	}
	w, err := activations.Create(dir, activations.WriterOptions{Model: model, DModel: dim, Layers: layers,
		Delimiter: o.Delimiter, Overwrite: o.Overwrite})
	if err != nil {
		return nil, err
	}
	return &DumpSink{w: w, layers: layers, dim: dim, matcher: o.Matcher, sum: CaptureSummary{Labels: map[string]int{}}}, nil
}

// Add writes one trace's steps and rows.
func (d *DumpSink) Add(rec TraceRecord) error {
	d.sum.Truncated += rec.Truncated
	if len(rec.Steps) == 0 {
		return nil
	}
	if len(rec.Rows) != len(d.layers) {
		return fmt.Errorf("capture: trace %s: rows for %d layers, expected %d", rec.Trace.Trace, len(rec.Rows), len(d.layers))
	}
	for li, l := range d.layers {
		if len(rec.Rows[li]) != len(rec.Steps)*d.dim {
			return fmt.Errorf("capture: trace %s, layer %d: %d values for %d steps of %d", rec.Trace.Trace, l, len(rec.Rows[li]), len(rec.Steps), d.dim)
		}
		if err := d.w.WriteRows(l, rec.Rows[li]); err != nil {
			return err
		}
	}
	length := lengthClass(rec.ResponseTokens)
	for _, s := range rec.Steps {
		start, end := s.TokenStart, s.TokenEnd
		st := activations.Step{Trace: s.Trace, Step: s.Step, Text: s.Text, Labels: d.matcher.Labels(s.Text),
			TokenStart: &start, TokenEnd: &end,
			Extra: map[string]json.RawMessage{"char_start": json.RawMessage(strconv.Itoa(s.CharStart)), "char_end": json.RawMessage(strconv.Itoa(s.CharEnd))}}
		if length != "" {
			st.Extra["length"] = json.RawMessage(strconv.Quote(length))
		}
		for _, l := range st.Labels {
			d.sum.Labels[l]++
		}
		if len(st.Labels) == 0 {
			d.sum.Labels["unlabelled"]++
		}
		if err := d.w.WriteSteps(st); err != nil {
			return err
		}
	}
	t := rec.Trace
	n := rec.ResponseTokens
	t.Tokens = &n
	if err := d.w.WriteTraces(t); err != nil {
		return err
	}
	d.sum.Traces++
	d.sum.Steps += len(rec.Steps)
	d.sum.Tokens += rec.Steps[len(rec.Steps)-1].TokenEnd // tokens read, up to the last step's state
	return nil
}

// Close finishes the dump; with no step written it is an error and nothing
// is left at dir.
func (d *DumpSink) Close() (*CaptureSummary, error) {
	if d.sum.Steps == 0 {
		d.w.Abort()
		return nil, inputerr.Errorf("capture: the traces hold no steps to record")
	}
	if err := d.w.Close(); err != nil {
		return nil, err
	}
	return &d.sum, nil
}

// Abort drops the dump.
func (d *DumpSink) Abort() { d.w.Abort() }

// Capture runs every trace through m and writes a rise-activations/1 dump
// at dir: for each step of a response one row per layer (CaptureRecords),
// with steps.jsonl recording each step's text, keyword labels, token span
// and response length class.
func Capture(ctx context.Context, m *model.Model, tok model.Tokenizer, traces []activations.Trace, dir string, o CaptureOptions) (*CaptureSummary, error) {
	layers, err := o.normalise(m.Layers)
	if err != nil {
		return nil, err
	}
	name := o.Model
	if name == "" {
		name = m.Name
	}
	sink, err := NewDumpSink(dir, name, m.Dim, layers, o)
	if err != nil {
		return nil, err
	}
	if err := CaptureRecords(ctx, m, tok, traces, o, sink.Add); err != nil {
		sink.Abort()
		return nil, err
	}
	return sink.Close()
}
