package label

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// DefaultDelimiter is the text that ends a reasoning step: a blank line, as in
// RISE (arXiv 2512.23988), where a step's activation is read at the delimiter
// token that ends it.
const DefaultDelimiter = "\n\n"

// SegmentOptions says how a response is cut into steps.
type SegmentOptions struct {
	// Delimiter separates steps; "" means DefaultDelimiter.
	Delimiter string
	// Sentences splits every delimited piece further into sentences, each
	// of which becomes a step of its own.
	Sentences bool
}

// A Segment is one step of a response: its text with the surrounding
// whitespace trimmed, and where that text lies in the response.
type Segment struct {
	Text string
	// Start and End are byte offsets into the response, so that
	// response[Start:End] == Text.
	Start, End int
	// Paragraph is the index, from 0, of the non-empty delimited piece the
	// segment comes from. Without sentence splitting it equals the segment's
	// own index.
	Paragraph int
}

// Split cuts text into steps at opts.Delimiter, trims the whitespace around
// each piece and drops pieces that are empty or only whitespace. With
// opts.Sentences each piece is cut further into sentences by SplitSentences.
// Offsets in the result refer to text.
func Split(text string, opts SegmentOptions) []Segment {
	delim := opts.Delimiter
	if delim == "" {
		delim = DefaultDelimiter
	}
	var segs []Segment
	para := 0
	for start := 0; start <= len(text); {
		end, next := len(text), len(text)+1
		if j := strings.Index(text[start:], delim); j >= 0 {
			end, next = start+j, start+j+len(delim)
		}
		if s, e := trimSpan(text, start, end); s < e {
			if opts.Sentences {
				for _, sen := range SplitSentences(text[s:e]) {
					segs = append(segs, Segment{Text: sen.Text, Start: s + sen.Start, End: s + sen.End, Paragraph: para})
				}
			} else {
				segs = append(segs, Segment{Text: text[s:e], Start: s, End: e, Paragraph: para})
			}
			para++
		}
		start = next
	}
	return segs
}

// trimSpan narrows text[start:end] to exclude leading and trailing whitespace.
func trimSpan(text string, start, end int) (int, int) {
	piece := text[start:end]
	left := strings.TrimLeftFunc(piece, unicode.IsSpace)
	s := start + len(piece) - len(left)
	e := s + len(strings.TrimRightFunc(left, unicode.IsSpace))
	return s, e
}

// abbreviations end with a full stop that does not end a sentence. They are
// matched case-insensitively against the letters and dots before the stop.
var abbreviations = map[string]bool{
	"e.g": true, "i.e": true, "cf": true, "vs": true, "viz": true, "approx": true,
	"mr": true, "mrs": true, "ms": true, "dr": true, "prof": true, "sr": true, "jr": true,
	"fig": true, "eq": true, "eqs": true, "resp": true,
}

// SplitSentences cuts text into sentences. A sentence ends after a run of
// '.', '?' or '!' (and any closing quotes or brackets right after it) when
// whitespace follows and that whitespace holds a newline or is followed by an
// uppercase letter, a digit or an opening quote. It never splits inside a
// decimal such as 3.5 (no whitespace follows the point), after an
// abbreviation such as "e.g.", "i.e." or "Mr.", or inside LaTeX math: $...$,
// $$...$$, \(...\) and \[...\]. Sentences are trimmed and empty ones dropped;
// offsets refer to text.
func SplitSentences(text string) []Segment {
	math := mathSpans(text)
	var segs []Segment
	add := func(start, end int) {
		if s, e := trimSpan(text, start, end); s < e {
			segs = append(segs, Segment{Text: text[s:e], Start: s, End: e})
		}
	}
	start, m := 0, 0
	for i := 0; i < len(text); {
		for m < len(math) && math[m][1] <= i {
			m++
		}
		if m < len(math) && math[m][0] <= i {
			i = math[m][1]
			continue
		}
		c := text[i]
		if c != '.' && c != '?' && c != '!' {
			i++
			continue
		}
		end := i
		for end < len(text) && (text[end] == '.' || text[end] == '?' || text[end] == '!') {
			end++
		}
		onlyStop := end == i+1 && c == '.'
		for end < len(text) {
			r, size := utf8.DecodeRuneInString(text[end:])
			if !isCloser(r) {
				break
			}
			end += size
		}
		if onlyStop && end == i+1 && isAbbreviation(text[:i]) {
			i = end
			continue
		}
		if sentenceBreak(text[end:]) {
			add(start, end)
			start = end
		}
		i = end
	}
	add(start, len(text))
	return segs
}

// sentenceBreak reports whether the text after a sentence terminator starts
// a new sentence: whitespace holding a newline, or whitespace followed by an
// uppercase letter, a digit or an opening quote.
func sentenceBreak(rest string) bool {
	n := 0
	for n < len(rest) {
		r, size := utf8.DecodeRuneInString(rest[n:])
		if !unicode.IsSpace(r) {
			break
		}
		if r == '\n' {
			return true
		}
		n += size
	}
	if n == 0 || n == len(rest) {
		return false
	}
	r, _ := utf8.DecodeRuneInString(rest[n:])
	return unicode.IsUpper(r) || unicode.IsDigit(r) || isOpener(r)
}

func isCloser(r rune) bool {
	switch r {
	case '"', '\'', ')', ']', '}', '\u2019', '\u201d', '\u00bb':
		return true
	}
	return false
}

func isOpener(r rune) bool {
	switch r {
	case '"', '\'', '\u2018', '\u201c', '\u00ab':
		return true
	}
	return false
}

// isAbbreviation reports whether before ends with a known abbreviation (the
// full stop that follows it is not part of before).
func isAbbreviation(before string) bool {
	j := len(before)
	for j > 0 {
		c := before[j-1]
		if !(c == '.' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			break
		}
		j--
	}
	if j > 0 {
		// A word that continues with a non-ASCII letter is no abbreviation
		// of ours.
		if r, _ := utf8.DecodeLastRuneInString(before[:j]); unicode.IsLetter(r) {
			return false
		}
	}
	word := before[j:]
	if len(word) == 0 || len(word) > 8 {
		return false
	}
	return abbreviations[strings.ToLower(word)]
}

// mathSpans returns the byte ranges [start, end) of the LaTeX math in text,
// in order: $...$, $$...$$, \(...\) and \[...\]. An opening mark without its
// closing mark opens nothing; \$ is an escaped dollar sign.
func mathSpans(text string) [][2]int {
	var spans [][2]int
	for i := 0; i < len(text); {
		c := text[i]
		switch {
		case c == '\\' && i+1 < len(text):
			closer := ""
			switch text[i+1] {
			case '(':
				closer = `\)`
			case '[':
				closer = `\]`
			}
			if closer != "" {
				if j := strings.Index(text[i+2:], closer); j >= 0 {
					end := i + 2 + j + len(closer)
					spans = append(spans, [2]int{i, end})
					i = end
					continue
				}
			}
			i += 2 // an escaped character, such as \$ or \\
		case c == '$' && i+1 < len(text) && text[i+1] == '$':
			if j := strings.Index(text[i+2:], "$$"); j >= 0 {
				end := i + 2 + j + 2
				spans = append(spans, [2]int{i, end})
				i = end
				continue
			}
			i += 2
		case c == '$':
			if j := closingDollar(text, i+1); j >= 0 {
				spans = append(spans, [2]int{i, j + 1})
				i = j + 1
				continue
			}
			i++
		default:
			i++
		}
	}
	return spans
}

// closingDollar returns the index of the first unescaped '$' at or after
// from, or -1.
func closingDollar(text string, from int) int {
	for i := from; i < len(text); i++ {
		switch text[i] {
		case '\\':
			i++
		case '$':
			return i
		}
	}
	return -1
}
