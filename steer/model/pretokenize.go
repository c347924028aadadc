package model

import (
	"unicode"
	"unicode/utf8"
)

// preSplitter appends the pre-tokens of s to dst.
type preSplitter func(dst []string, s string) []string

// The pre-tokenizer regexes this package implements by hand (Go's regexp
// has no lookahead for \s+(?!\S)).
const (
	patternGPT2   = `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
	patternLlama3 = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	patternQwen2  = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
)

var knownPatterns = map[string]preSplitter{
	patternGPT2:   splitGPT2,
	patternLlama3: func(dst []string, s string) []string { return splitModern(dst, s, 3) },
	patternQwen2:  func(dst []string, s string) []string { return splitModern(dst, s, 1) },
}

func preL(r rune) bool  { return unicode.IsLetter(r) }
func preN(r rune) bool  { return unicode.IsNumber(r) }
func preS(r rune) bool  { return unicode.IsSpace(r) }
func preNL(r rune) bool { return r == '\r' || r == '\n' }

// preP reports whether r is in [^\s\p{L}\p{N}].
func preP(r rune) bool { return !preS(r) && !preL(r) && !preN(r) }

// preRun returns the end of the run of runes from i that satisfy f.
func preRun(rs []rune, i int, f func(rune) bool) int {
	for i < len(rs) && f(rs[i]) {
		i++
	}
	return i
}

// preContraction returns the length of the preContraction 's 't 're 've 'm 'll
// 'd at rs[i:], or 0; fold makes the letters case-insensitive.
func preContraction(rs []rune, i int, fold bool) int {
	if i >= len(rs) || rs[i] != '\'' {
		return 0
	}
	for _, suf := range [...]string{"s", "t", "re", "ve", "m", "ll", "d"} {
		j := i + 1
		ok := true
		for _, c := range suf {
			if j >= len(rs) || !(rs[j] == c || fold && preEqualFold(rs[j], c)) {
				ok = false
				break
			}
			j++
		}
		if ok {
			return j - i
		}
	}
	return 0
}

// preEqualFold reports whether r and c are equal under simple Unicode case
// folding, as (?i) matches.
func preEqualFold(r, c rune) bool {
	for f := unicode.SimpleFold(c); f != c; f = unicode.SimpleFold(f) {
		if f == r {
			return true
		}
	}
	return r == c
}

// preWhitespace matches \s+(?!\S)|\s+ at rs[i], where rs[i] is a space
// character: a run of whitespace that is followed by a non-space gives up
// its last character to the next piece, unless it is a single character.
func preWhitespace(rs []rune, i int) int {
	j := preRun(rs, i, preS)
	if j < len(rs) && j-i > 1 {
		return j - 1
	}
	return j
}

// splitGPT2 cuts s as the GPT-2 pattern
// 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// does.
func splitGPT2(dst []string, s string) []string {
	rs, offs := runeOffsets(s)
	for i := 0; i < len(rs); {
		j := gpt2Match(rs, i)
		dst = append(dst, s[offs[i]:offs[j]])
		i = j
	}
	return dst
}

// runeOffsets returns the runes of s and the byte offset of each, with
// len(s) appended. An invalid byte is one utf8.RuneError rune, so pieces
// cut at these offsets keep the bytes of s unchanged.
func runeOffsets(s string) ([]rune, []int) {
	rs := make([]rune, 0, len(s))
	offs := make([]int, 0, len(s)+1)
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		rs = append(rs, r)
		offs = append(offs, i)
		i += n
	}
	return rs, append(offs, len(s))
}

// gpt2Match returns the end of the GPT-2 pattern's match at rs[i]; it is
// always past i.
func gpt2Match(rs []rune, i int) int {
	if n := preContraction(rs, i, false); n > 0 {
		return i + n
	}
	k := i
	if rs[k] == ' ' && k+1 < len(rs) {
		k++
	}
	for _, class := range [...]func(rune) bool{preL, preN, preP} {
		if class(rs[k]) {
			return preRun(rs, k, class)
		}
	}
	if preS(rs[i]) {
		return preWhitespace(rs, i)
	}
	// Unreachable: every rune is a letter, number, space or other.
	return i + 1
}

// splitModern cuts s as the Llama 3 (maxDigits 3) or Qwen2 (maxDigits 1)
// pattern
// (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,maxDigits}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
// does.
func splitModern(dst []string, s string, maxDigits int) []string {
	rs, offs := runeOffsets(s)
	for i := 0; i < len(rs); {
		j := modernMatch(rs, i, maxDigits)
		dst = append(dst, s[offs[i]:offs[j]])
		i = j
	}
	return dst
}

// modernMatch returns the end of the Llama 3 / Qwen2 pattern's match at
// rs[i]; it is always past i.
func modernMatch(rs []rune, i, maxDigits int) int {
	r := rs[i]
	// (?i:'s|'t|'re|'ve|'m|'ll|'d)
	if n := preContraction(rs, i, true); n > 0 {
		return i + n
	}
	// [^\r\n\p{L}\p{N}]?\p{L}+
	if preL(r) {
		return preRun(rs, i, preL)
	}
	if !preNL(r) && !preN(r) && i+1 < len(rs) && preL(rs[i+1]) {
		return preRun(rs, i+1, preL)
	}
	// \p{N}{1,maxDigits}
	if preN(r) {
		j := i + 1
		for j < len(rs) && j-i < maxDigits && preN(rs[j]) {
			j++
		}
		return j
	}
	// ' ?[^\s\p{L}\p{N}]+[\r\n]*'
	k := i
	if r == ' ' && k+1 < len(rs) && preP(rs[k+1]) {
		k++
	}
	if preP(rs[k]) {
		return preRun(rs, preRun(rs, k, preP), preNL)
	}
	// \s*[\r\n]+ ends after the last line break in the run of whitespace.
	j := preRun(rs, i, preS)
	for k := j - 1; k >= i; k-- {
		if preNL(rs[k]) {
			return k + 1
		}
	}
	// \s+(?!\S)|\s+
	return preWhitespace(rs, i)
}
