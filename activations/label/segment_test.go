package label

import (
	"reflect"
	"strings"
	"testing"
)

// texts returns the texts of segs, after checking that every segment's
// offsets point at its text.
func texts(t *testing.T, src string, segs []Segment) []string {
	t.Helper()
	var out []string
	for i, s := range segs {
		if s.Start < 0 || s.End > len(src) || s.Start > s.End || src[s.Start:s.End] != s.Text {
			t.Fatalf("segment %d: offsets [%d,%d) do not point at its text %q", i, s.Start, s.End, s.Text)
		}
		out = append(out, s.Text)
	}
	return out
}

func TestSplit(t *testing.T) {
	tests := []struct {
		name string
		text string
		opts SegmentOptions
		want []string
	}{
		{"empty", "", SegmentOptions{}, nil},
		{"only whitespace", " \n\n \t\n\n", SegmentOptions{}, nil},
		{"one step", "Let x = 2.", SegmentOptions{}, []string{"Let x = 2."}},
		{"blank lines", "First.\n\nSecond.\n\nThird.", SegmentOptions{}, []string{"First.", "Second.", "Third."}},
		{"single newline stays inside a step", "a\nb\n\nc", SegmentOptions{}, []string{"a\nb", "c"}},
		{"trims and drops empty pieces", "\n\n  First  \n\n\n\n\n Second\n\n", SegmentOptions{}, []string{"First", "Second"}},
		{"three newlines", "a\n\n\nb", SegmentOptions{}, []string{"a", "b"}},
		{"custom delimiter", "a\nb\n\nc", SegmentOptions{Delimiter: "\n"}, []string{"a", "b", "c"}},
		{"multi-byte delimiter", "a||b|| ||c", SegmentOptions{Delimiter: "||"}, []string{"a", "b", "c"}},
		{"sentences", "Let x = 3.5. Then y = 2.\n\nWait, is that right? Yes!", SegmentOptions{Sentences: true},
			[]string{"Let x = 3.5.", "Then y = 2.", "Wait, is that right?", "Yes!"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := texts(t, tt.text, Split(tt.text, tt.opts))
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Split(%q) = %q, want %q", tt.text, got, tt.want)
			}
		})
	}
}

func TestSplitOffsetsAndParagraphs(t *testing.T) {
	text := "  Hello there. Bye now.\n\n\n\nWait.  "
	segs := Split(text, SegmentOptions{Sentences: true})
	want := []Segment{
		{Text: "Hello there.", Start: 2, End: 14, Paragraph: 0},
		{Text: "Bye now.", Start: 15, End: 23, Paragraph: 0},
		{Text: "Wait.", Start: 27, End: 32, Paragraph: 1},
	}
	if !reflect.DeepEqual(segs, want) {
		t.Errorf("Split = %+v, want %+v", segs, want)
	}
	segs = Split(text, SegmentOptions{})
	want = []Segment{
		{Text: "Hello there. Bye now.", Start: 2, End: 23, Paragraph: 0},
		{Text: "Wait.", Start: 27, End: 32, Paragraph: 1},
	}
	if !reflect.DeepEqual(segs, want) {
		t.Errorf("Split = %+v, want %+v", segs, want)
	}
}

func TestSplitSentences(t *testing.T) {
	tests := []struct {
		name string
		text string
		want []string
	}{
		{"plain", "One. Two? Three! Four", []string{"One.", "Two?", "Three!", "Four"}},
		{"decimal", "x is 3.5 and y is 0.25. Done.", []string{"x is 3.5 and y is 0.25.", "Done."}},
		{"lowercase after stop", "Wait, no. wait again.", []string{"Wait, no. wait again."}},
		{"digit after stop", "It is 4. 5 is next.", []string{"It is 4.", "5 is next."}},
		{"quote after stop", `He said so. "Really?" she asked.`, []string{"He said so.", `"Really?" she asked.`}},
		{"closing quote kept", `She said "stop." Then left.`, []string{`She said "stop."`, "Then left."}},
		{"curly quotes", "It ended. \u201cOk,\u201d he said.", []string{"It ended.", "\u201cOk,\u201d he said."}},
		{"newline after stop", "First line.\nsecond line", []string{"First line.", "second line"}},
		{"e.g.", "Use a prime, e.g. The number 7. Fine.", []string{"Use a prime, e.g. The number 7.", "Fine."}},
		{"i.e.", "The root, i.e. The value 2, works.", []string{"The root, i.e. The value 2, works."}},
		{"Mr.", "Ask Mr. Smith. He knows.", []string{"Ask Mr. Smith.", "He knows."}},
		{"Dr. and vs.", "Dr. Who vs. Daleks. End.", []string{"Dr. Who vs. Daleks.", "End."}},
		{"ellipsis", "Hmm... Let me think.", []string{"Hmm...", "Let me think."}},
		{"mixed terminators", "Really?! Yes.", []string{"Really?!", "Yes."}},
		{"no space at end", "Done.", []string{"Done."}},
		{"trailing space", "Done.   ", []string{"Done."}},
		{"inline math", "So $x = 1. Y$ holds. Next.", []string{"So $x = 1. Y$ holds.", "Next."}},
		{"display math", "We get $$a. B. C$$ here. Then.", []string{"We get $$a. B. C$$ here.", "Then."}},
		{"paren math", `Take \(f(x). G\) now. Ok.`, []string{`Take \(f(x). G\) now.`, "Ok."}},
		{"bracket math", "Take \\[x.\nY\\] now. Ok.", []string{"Take \\[x.\nY\\] now.", "Ok."}},
		{"escaped dollar", `It costs \$5. Then \$6. Ok.`, []string{`It costs \$5.`, `Then \$6.`, "Ok."}},
		{"unclosed dollar", "Cost is $5. Then more.", []string{"Cost is $5.", "Then more."}},
		{"factorial", "So 8!. But wait.", []string{"So 8!.", "But wait."}},
		{"non-ASCII upper", "Fin. Élan follows.", []string{"Fin.", "Élan follows."}},
		{"whitespace only", "   ", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := texts(t, tt.text, SplitSentences(tt.text))
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("SplitSentences(%q) = %q, want %q", tt.text, got, tt.want)
			}
		})
	}
}

// TestSplitNeverLoses checks on assorted texts that the segments cover every
// non-space byte exactly once, in order.
func TestSplitNeverLoses(t *testing.T) {
	texts := []string{
		"a. B. c.\n\nD? e! F...\n\n$x. Y$ Z. \\(q. R\\)\n\n\n",
		"$$\n\n$$", "\\", "$", "$$", "\\(", ".", "!?.", "\n\n\n\n", "Mr. e.g. I.E. X",
		"\xff\xfe. Bad bytes. \xc3",
	}
	for _, text := range texts {
		for _, opts := range []SegmentOptions{{}, {Sentences: true}, {Delimiter: "."}} {
			var b strings.Builder
			last := 0
			for _, s := range Split(text, opts) {
				if s.Start < last {
					t.Fatalf("Split(%q, %+v): segment %q starts at %d, before the end %d of the previous one", text, opts, s.Text, s.Start, last)
				}
				if text[s.Start:s.End] != s.Text {
					t.Fatalf("Split(%q, %+v): offsets do not match %q", text, opts, s.Text)
				}
				last = s.End
				b.WriteString(s.Text)
			}
			want := strings.Join(strings.Fields(text), "")
			if opts.Delimiter == "." {
				want = strings.ReplaceAll(want, ".", "")
			}
			got := strings.Join(strings.Fields(b.String()), "")
			if got != want {
				t.Errorf("Split(%q, %+v) kept %q, want %q", text, opts, got, want)
			}
		}
	}
}
