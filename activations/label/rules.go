package label

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/rise-interp/rise/internal/files"
)

// Behaviour labels of the default rules, and the label of a step that matches
// no rule.
const (
	Reflection   = "reflection"
	Backtracking = "backtracking"
	Other        = "other"
)

// A Rule names a behaviour and the phrases that mark a step as showing it.
type Rule struct {
	Behaviour string
	Phrases   []string
}

// Rules is an ordered list of behaviour rules. Labels are reported in this
// order.
//
// A phrase matches case-insensitively (Unicode simple case folding). Where
// the phrase begins or ends with a word character (a letter, digit, combining
// mark or underscore) the text must have a word boundary there, so "wait"
// matches "Wait," but not "waiting" or "await"; where it begins or ends with
// another character no boundary is needed, so "'s correct" matches "That's
// correct.". A run of whitespace in a phrase matches any run of whitespace,
// and the apostrophes ', ’ and ʼ match each other.
type Rules []Rule

// DefaultRules returns the keyword rules of RISE (arXiv 2512.23988, Table 3),
// which RISE takes from SEAL (arXiv 2504.07986): reflection and backtracking
// (SEAL's "transition") phrases. RISE reports that these rules agree with a
// GPT judge on about 85% of steps.
func DefaultRules() Rules {
	return Rules{
		{Behaviour: Reflection, Phrases: []string{
			"wait", "verify", "make sure", "hold on", "think again",
			"'s correct", "'s incorrect", "let me check", "seems right",
		}},
		{Behaviour: Backtracking, Phrases: []string{
			"alternatively", "think differently", "another way", "another approach",
			"another method", "another solution", "another strategy", "another technique",
		}},
	}
}

// Behaviours returns the behaviour names in order.
func (r Rules) Behaviours() []string {
	names := make([]string, len(r))
	for i, rule := range r {
		names[i] = rule.Behaviour
	}
	return names
}

// Validate checks that there is at least one behaviour, that every behaviour
// has a distinct non-empty name other than "other" and at least one phrase,
// and that no phrase is empty or only whitespace.
func (r Rules) Validate() error {
	if len(r) == 0 {
		return errors.New("rules: expected at least one behaviour, found none")
	}
	seen := make(map[string]bool, len(r))
	for i, rule := range r {
		if err := checkBehaviourName(rule.Behaviour); err != nil {
			return fmt.Errorf("rules: behaviour %d: %w", i, err)
		}
		if seen[rule.Behaviour] {
			return fmt.Errorf("rules: behaviour %q: expected each behaviour once, found it twice", rule.Behaviour)
		}
		seen[rule.Behaviour] = true
		if len(rule.Phrases) == 0 {
			return fmt.Errorf("rules: behaviour %q: expected at least one phrase, found none", rule.Behaviour)
		}
		for j, p := range rule.Phrases {
			if strings.TrimSpace(p) == "" {
				return fmt.Errorf("rules: behaviour %q: phrase %d: expected text, found %q", rule.Behaviour, j, p)
			}
		}
	}
	return nil
}

func checkBehaviourName(name string) error {
	switch {
	case strings.TrimSpace(name) == "":
		return fmt.Errorf("expected a behaviour name, found %q", name)
	case name == Other:
		return fmt.Errorf("the behaviour name %q is reserved for steps that match no rule", Other)
	}
	return nil
}

// MarshalJSON writes the rules as one JSON object mapping each behaviour to
// its phrases, in order: the format LoadRules reads.
func (r Rules) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, rule := range r {
		if i > 0 {
			b.WriteByte(',')
		}
		k, err := json.Marshal(rule.Behaviour)
		if err != nil {
			return nil, err
		}
		v, err := json.Marshal(rule.Phrases)
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// maxJSONBytes bounds the JSON files the package reads whole: rules and
// the per-trace files of Thought Anchors (a solution and its chunks).
const maxJSONBytes = 64 << 20

// LoadRules reads rules from a JSON file holding one object that maps each
// behaviour name to a list of phrases, for example
//
//	{"reflection": ["wait", "let me check"], "backtracking": ["alternatively"]}
//
// The behaviours keep the order of the file. Errors name the file, the line
// and the behaviour, and say what was expected and what was found.
func LoadRules(path string) (Rules, error) {
	data, err := files.ReadRegular(path, maxJSONBytes, "a JSON object of keyword rules")
	if err != nil {
		return nil, fmt.Errorf("rules file: %w", err)
	}
	rules, err := ParseRules(data)
	if err != nil {
		return nil, fmt.Errorf("rules file %s: %w", path, err)
	}
	return rules, nil
}

// ParseRules reads rules from JSON in the format of LoadRules. Errors give
// the line and the behaviour, and say what was expected and what was found.
func ParseRules(data []byte) (Rules, error) {
	p := rulesParser{data: data, dec: json.NewDecoder(bytes.NewReader(data))}
	return p.parse()
}

type rulesParser struct {
	data []byte
	dec  *json.Decoder
}

func (p *rulesParser) parse() (Rules, error) {
	tok, err := p.next()
	if err != nil {
		return nil, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, p.errorf("expected a JSON object mapping behaviour names to lists of phrases, found %s", describe(tok))
	}
	var rules Rules
	lines := map[string]int{}
	for p.dec.More() {
		tok, err := p.next()
		if err != nil {
			return nil, err
		}
		name := tok.(string) // object keys are always strings
		line := p.line()
		if err := checkBehaviourName(name); err != nil {
			return nil, fmt.Errorf("line %d: behaviour %q: %w", line, name, err)
		}
		if first, dup := lines[name]; dup {
			return nil, fmt.Errorf("line %d: behaviour %q: expected each behaviour once, found it again (first on line %d)", line, name, first)
		}
		lines[name] = line
		phrases, err := p.phrases(name)
		if err != nil {
			return nil, err
		}
		rules = append(rules, Rule{Behaviour: name, Phrases: phrases})
	}
	if _, err := p.next(); err != nil { // the closing brace
		return nil, err
	}
	if tok, err := p.dec.Token(); err != io.EOF {
		if err != nil {
			return nil, p.errorf("expected nothing after the object, found %v", p.syntax(err))
		}
		return nil, p.errorf("expected nothing after the object, found %s", describe(tok))
	}
	if len(rules) == 0 {
		return nil, errors.New("expected at least one behaviour, found an empty object")
	}
	return rules, nil
}

func (p *rulesParser) phrases(name string) ([]string, error) {
	tok, err := p.next()
	if err != nil {
		return nil, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return nil, p.errorf("behaviour %q: expected a list of phrases, found %s", name, describe(tok))
	}
	var phrases []string
	for p.dec.More() {
		tok, err := p.next()
		if err != nil {
			return nil, err
		}
		s, ok := tok.(string)
		if !ok {
			return nil, p.errorf("behaviour %q: phrase %d: expected a string, found %s", name, len(phrases), describe(tok))
		}
		if strings.TrimSpace(s) == "" {
			return nil, p.errorf("behaviour %q: phrase %d: expected text, found %q", name, len(phrases), s)
		}
		phrases = append(phrases, s)
	}
	if _, err := p.next(); err != nil { // the closing bracket
		return nil, err
	}
	if len(phrases) == 0 {
		return nil, p.errorf("behaviour %q: expected at least one phrase, found an empty list", name)
	}
	return phrases, nil
}

// next reads one token; a nested object or list is reported by its opening
// delimiter and, when it is not where one is expected, rejected by the caller.
func (p *rulesParser) next() (json.Token, error) {
	tok, err := p.dec.Token()
	if err == io.EOF {
		return nil, p.errorf("expected more JSON, found the end of the file")
	}
	if err != nil {
		return nil, p.errorf("%v", p.syntax(err))
	}
	return tok, nil
}

func (p *rulesParser) syntax(err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("invalid JSON: %v", se)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return errors.New("invalid JSON: unexpected end of the file")
	}
	return err
}

// line is the line of the decoder's position, from 1.
func (p *rulesParser) line() int {
	off := int(p.dec.InputOffset())
	if off > len(p.data) {
		off = len(p.data)
	}
	return 1 + bytes.Count(p.data[:off], []byte{'\n'})
}

func (p *rulesParser) errorf(format string, a ...any) error {
	return fmt.Errorf("line %d: %s", p.line(), fmt.Sprintf(format, a...))
}

// describe names a JSON token for an error message.
func describe(tok json.Token) string {
	switch v := tok.(type) {
	case json.Delim:
		switch v {
		case '{':
			return "an object"
		case '[':
			return "a list"
		}
		return fmt.Sprintf("%q", string(v))
	case string:
		return fmt.Sprintf("the string %q", clip(v, 40))
	case float64:
		return fmt.Sprintf("the number %v", v)
	case json.Number:
		return "the number " + string(v)
	case bool:
		return fmt.Sprintf("%v", v)
	case nil:
		return "null"
	}
	return fmt.Sprintf("%v", tok)
}

// clip shortens s to at most n bytes (at a rune boundary) for a message.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}

// A Matcher labels text with compiled rules. It is safe for concurrent use.
type Matcher struct {
	behaviours []string
	phrases    []phrase
	// atStart lists, for each ASCII byte, the phrases whose first character
	// matches it, for use where no word character comes before; inWord lists
	// the subset of those that need no word boundary at their start. byFold
	// lists the phrases by the folded form of their first character, for
	// text characters beyond ASCII.
	atStart [utf8.RuneSelf][]int32
	inWord  [utf8.RuneSelf][]int32
	byFold  map[rune][]int32
	// flags classifies every byte for the fast path of match.
	flags [256]uint8
}

// Byte classes of Matcher.flags. flagAtStart and flagInWord are 1<<0 and
// 1<<1 so that match can pick one with a shift by whether a word character
// comes before.
const (
	flagAtStart = 1 << iota // phrases may start here after a non-word character
	flagInWord              // phrases may start here after a word character
	flagWord                // an ASCII word character
	flagMulti               // the first byte of a multi-byte (or invalid) character
)

// phrase is one compiled phrase: a sequence of folded runes, where a
// whitespace rune (' ') stands for a run of one or more whitespace runes.
type phrase struct {
	text      string
	runes     []rune
	behaviour int
	wordStart bool // the text must not have a word character just before
	wordEnd   bool // the text must not have a word character just after
}

// Compile validates the rules and builds a Matcher for them.
func (r Rules) Compile() (*Matcher, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	m := &Matcher{behaviours: r.Behaviours(), byFold: map[rune][]int32{}}
	for b, rule := range r {
		for _, text := range rule.Phrases {
			var runes []rune
			for _, c := range strings.TrimSpace(text) {
				if unicode.IsSpace(c) {
					if runes[len(runes)-1] != ' ' {
						runes = append(runes, ' ')
					}
					continue
				}
				runes = append(runes, fold(c))
			}
			p := phrase{
				text: text, runes: runes, behaviour: b,
				wordStart: isWord(runes[0]), wordEnd: isWord(runes[len(runes)-1]),
			}
			idx := int32(len(m.phrases))
			m.phrases = append(m.phrases, p)
			first := runes[0]
			m.byFold[first] = append(m.byFold[first], idx)
			for c := 0; c < utf8.RuneSelf; c++ {
				if fold(rune(c)) == first {
					m.atStart[c] = append(m.atStart[c], idx)
					if !p.wordStart {
						m.inWord[c] = append(m.inWord[c], idx)
					}
				}
			}
		}
	}
	for c := 0; c < 256; c++ {
		switch {
		case c >= utf8.RuneSelf:
			m.flags[c] = flagMulti | flagAtStart | flagInWord
		default:
			if asciiWord[c] {
				m.flags[c] |= flagWord
			}
			if len(m.atStart[c]) > 0 {
				m.flags[c] |= flagAtStart
			}
			if len(m.inWord[c]) > 0 {
				m.flags[c] |= flagInWord
			}
		}
	}
	return m, nil
}

// MustCompile is like Compile but panics if the rules are invalid. It is
// meant for rules written into a program, such as DefaultRules.
func (r Rules) MustCompile() *Matcher {
	m, err := r.Compile()
	if err != nil {
		panic("label: " + err.Error())
	}
	return m
}

var defaultMatcher = DefaultRules().MustCompile()

// DefaultMatcher returns the Matcher of DefaultRules.
func DefaultMatcher() *Matcher { return defaultMatcher }

// Behaviours returns the behaviour names of the rules, in order.
func (m *Matcher) Behaviours() []string { return append([]string(nil), m.behaviours...) }

// Labels returns the behaviours whose phrases occur in text, in rules order,
// or []string{"other"} when none does.
func (m *Matcher) Labels(text string) []string {
	var small [64]bool
	found := small[:0]
	if len(m.behaviours) <= len(small) {
		found = small[:len(m.behaviours)]
	} else {
		found = make([]bool, len(m.behaviours))
	}
	n := m.match(text, found)
	if n == 0 {
		return []string{Other}
	}
	labels := make([]string, 0, n)
	for b, ok := range found {
		if ok {
			labels = append(labels, m.behaviours[b])
		}
	}
	return labels
}

// match marks in found the behaviours that occur in text and returns how
// many there are.
func (m *Matcher) match(text string, found []bool) int {
	n := 0
	prev := uint(0) // 1 when a word character comes before text[i]
	for i := 0; i < len(text); {
		f := m.flags[text[i]]
		if f&(1<<prev) == 0 {
			// No phrase can start here: the fast path.
			prev = uint(f>>2) & 1
			i++
			continue
		}
		var cands []int32
		var next int // where the text after the first character starts
		var word bool
		if f&flagMulti == 0 {
			c := text[i]
			if prev == 1 {
				cands = m.inWord[c]
			} else {
				cands = m.atStart[c]
			}
			next, word = i+1, f&flagWord != 0
		} else {
			r, size := utf8.DecodeRuneInString(text[i:])
			cands = m.byFold[fold(r)]
			next, word = i+size, isWord(r)
		}
		for _, pi := range cands {
			p := &m.phrases[pi]
			if found[p.behaviour] || p.wordStart && prev == 1 {
				continue
			}
			if end, ok := matchRest(text, next, p.runes[1:]); ok && !(p.wordEnd && wordAt(text, end)) {
				found[p.behaviour] = true
				if n++; n == len(found) {
					return n
				}
			}
		}
		prev = 0
		if word {
			prev = 1
		}
		i = next
	}
	return n
}

// matchRest reports whether the folded runes occur in text at byte offset i,
// where ' ' stands for a run of whitespace, and where the occurrence ends.
func matchRest(text string, i int, runes []rune) (int, bool) {
	for _, want := range runes {
		if i >= len(text) {
			return 0, false
		}
		if want == ' ' {
			spaces := 0
			for i < len(text) {
				r, size := decode(text, i)
				if !unicode.IsSpace(r) {
					break
				}
				i += size
				spaces++
			}
			if spaces == 0 {
				return 0, false
			}
			continue
		}
		if c := text[i]; c < utf8.RuneSelf {
			if asciiFold[c] != want {
				return 0, false
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(text[i:])
		if fold(r) != want {
			return 0, false
		}
		i += size
	}
	return i, true
}

func decode(text string, i int) (rune, int) {
	if c := text[i]; c < utf8.RuneSelf {
		return rune(c), 1
	}
	return utf8.DecodeRuneInString(text[i:])
}

// wordAt reports whether a word character starts at byte offset i of text.
func wordAt(text string, i int) bool {
	if i >= len(text) {
		return false
	}
	r, _ := decode(text, i)
	return isWord(r)
}

// asciiWord and asciiFold hold isWord and fold for ASCII characters.
var (
	asciiWord = func() (t [utf8.RuneSelf]bool) {
		for c := range t {
			t[c] = isWord(rune(c))
		}
		return t
	}()
	asciiFold = func() (t [utf8.RuneSelf]rune) {
		for c := range t {
			t[c] = fold(rune(c))
		}
		return t
	}()
)

// isWord reports whether r is a word character: a letter, a digit, a
// combining mark or an underscore.
func isWord(r rune) bool {
	if r < utf8.RuneSelf {
		return r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z'
	}
	return unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r)
}

// fold maps r to a representative of its case-folding class (the smallest
// rune of its unicode.SimpleFold orbit, so 'a', 'A' fold together, and so do
// 's', 'S' and 'ſ'), and maps the typographic apostrophes ’ and ʼ to '.
func fold(r rune) rune {
	if r < utf8.RuneSelf {
		if r >= 'a' && r <= 'z' {
			return r - 'a' + 'A'
		}
		return r
	}
	switch r {
	case '\u2019', '\u02bc':
		return '\''
	}
	min := r
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		if f < min {
			min = f
		}
	}
	return min
}
