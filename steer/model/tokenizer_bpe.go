package model

import (
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/rise-interp/rise/internal/minheap"
)

// BPETokenizer is the byte-level BPE tokenizer of a Hugging Face
// tokenizer.json, as used by GPT-2, Llama 3, Qwen2 and the
// DeepSeek-R1-Distill models. Text is split around added tokens,
// normalized, cut into pieces by the pre-tokenizer's pattern, mapped byte
// by byte onto GPT-2's printable alphabet and merged by merge rank. It is
// safe for concurrent use.
type BPETokenizer struct {
	path string

	// tokens maps an id to its stored text ("" for unused ids); added
	// tokens hold their content.
	tokens []string
	// vocab maps the model's entries and the added tokens' contents to
	// ids; bpeVocab holds the model's entries only.
	vocab    map[string]int
	bpeVocab map[string]int
	// merges maps a pair of ids to the rank of its merge and the merged id.
	merges      map[[2]int]bpeMerge
	ignoreMerge bool

	added        []addedToken
	addedByID    map[int]*addedToken
	addedByFirst map[byte][]*addedToken // longest content first

	normalize  func(string) string
	splitters  []preSplitter
	addPrefix  bool
	bos        int
	eos        []int
	byteSymbol [256]int // id of each byte's one-character symbol, or -1

	mu    sync.Mutex
	cache map[string][]int
}

var _ Tokenizer = (*BPETokenizer)(nil)

type bpeMerge struct{ rank, id int }

type addedToken struct {
	id      int
	content string
	special bool
}

// bpeCacheLimit bounds the number of cached pre-token encodings; the cache
// is emptied when it is full.
const bpeCacheLimit = 1 << 16

// maxBPEID bounds the ids accepted from a tokenizer.json, so a corrupt
// file cannot make the loader allocate without limit.
const maxBPEID = 1 << 21

// Encode returns the ids of text. Added tokens that are not special (such
// as DeepSeek's "<think>") are always recognised in the text, as Hugging
// Face does; special ones only when special is set. The rest is
// normalized, pre-tokenized and BPE-encoded.
func (t *BPETokenizer) Encode(text string, bos, special bool) []int {
	var ids []int
	if bos && t.bos >= 0 {
		ids = append(ids, t.bos)
	}
	start := 0
	for i := 0; i < len(text); {
		if a := t.matchAdded(text[i:], special); a != nil {
			ids = t.encodeSegment(ids, text[start:i])
			ids = append(ids, a.id)
			i += len(a.content)
			start = i
			continue
		}
		i++
	}
	return t.encodeSegment(ids, text[start:])
}

// matchAdded returns the longest added token that s starts with, leaving
// special tokens out unless special is set.
func (t *BPETokenizer) matchAdded(s string, special bool) *addedToken {
	for _, a := range t.addedByFirst[s[0]] {
		if (special || !a.special) && strings.HasPrefix(s, a.content) {
			return a
		}
	}
	return nil
}

// encodeSegment appends the ids of text that holds no added token.
func (t *BPETokenizer) encodeSegment(ids []int, text string) []int {
	if text == "" {
		return ids
	}
	text = t.normalize(text)
	if t.addPrefix && !strings.HasPrefix(text, " ") {
		text = " " + text
	}
	pieces := []string{text}
	for _, split := range t.splitters {
		var next []string
		for _, p := range pieces {
			next = split(next, p)
		}
		pieces = next
	}
	for _, p := range pieces {
		ids = t.encodePiece(ids, p)
	}
	return ids
}

// encodePiece appends the BPE ids of one pre-token, using the cache.
func (t *BPETokenizer) encodePiece(ids []int, piece string) []int {
	t.mu.Lock()
	cached, ok := t.cache[piece]
	t.mu.Unlock()
	if ok {
		return append(ids, cached...)
	}
	out := t.bpe(piece)
	t.mu.Lock()
	if len(t.cache) >= bpeCacheLimit {
		clear(t.cache)
	}
	t.cache[piece] = out
	t.mu.Unlock()
	return append(ids, out...)
}

// bpe merges the byte symbols of piece by rank: the pair with the lowest
// merge rank (leftmost on ties) is merged first, as Hugging Face does.
func (t *BPETokenizer) bpe(piece string) []int {
	if t.ignoreMerge {
		var sb strings.Builder
		for i := 0; i < len(piece); i++ {
			sb.WriteRune(byteToRune[piece[i]])
		}
		if id, ok := t.bpeVocab[sb.String()]; ok {
			return []int{id}
		}
	}
	sym := make([]int, 0, len(piece))
	for i := 0; i < len(piece); i++ {
		// A byte without a symbol in the vocabulary is dropped (such a
		// vocabulary has no <unk> to stand for it).
		if id := t.byteSymbol[piece[i]]; id >= 0 {
			sym = append(sym, id)
		}
	}
	if len(sym) < 2 {
		return sym
	}
	n := len(sym)
	prev := make([]int, n)
	next := make([]int, n)
	for i := range n {
		prev[i], next[i] = i-1, i+1
	}
	next[n-1] = -1
	h := minheap.Make(earlierMerge)
	push := func(i int) {
		j := next[i]
		if i < 0 || j < 0 {
			return
		}
		if m, ok := t.merges[[2]int{sym[i], sym[j]}]; ok {
			h.Push(mergeCand{rank: m.rank, pos: i, left: sym[i], right: sym[j], id: m.id})
		}
	}
	for i := 0; i+1 < n; i++ {
		push(i)
	}
	for h.Len() > 0 {
		c := h.Pop()
		i := c.pos
		j := next[i]
		// Skip candidates made stale by an earlier merge.
		if sym[i] != c.left || j < 0 || sym[j] != c.right {
			continue
		}
		sym[i] = c.id
		sym[j] = -1
		next[i] = next[j]
		if next[j] >= 0 {
			prev[next[j]] = i
		}
		if prev[i] >= 0 {
			push(prev[i])
		}
		push(i)
	}
	out := make([]int, 0, n)
	for i := 0; i >= 0; i = next[i] {
		out = append(out, sym[i])
	}
	return out
}

type mergeCand struct{ rank, pos, left, right, id int }

// earlierMerge orders merge candidates by rank, then position.
func earlierMerge(a, b mergeCand) bool {
	if a.rank != b.rank {
		return a.rank < b.rank
	}
	return a.pos < b.pos
}

// Decode returns the text of ids: byte-level symbols become their bytes
// and added tokens their content, special ones only when special is set.
// Ids outside the vocabulary are skipped, and a trailing incomplete UTF-8
// sequence is kept back.
func (t *BPETokenizer) Decode(ids []int, special bool) string {
	var out []byte
	for _, id := range ids {
		if id < 0 || id >= len(t.tokens) {
			continue
		}
		if a, ok := t.addedByID[id]; ok {
			if special || !a.special {
				out = append(out, a.content...)
			}
			continue
		}
		for _, r := range t.tokens[id] {
			if b, ok := runeToByte[r]; ok {
				out = append(out, b)
			} else {
				out = utf8.AppendRune(out, r)
			}
		}
	}
	return string(trimIncompleteUTF8(out))
}

// VocabSize returns one more than the largest id of the vocabulary and the
// added tokens.
func (t *BPETokenizer) VocabSize() int { return len(t.tokens) }

// BOS returns the beginning-of-sequence id, or -1 if the tokenizer adds
// none (as for Qwen2).
func (t *BPETokenizer) BOS() int { return t.bos }

// EOS returns the ids that end a generation.
func (t *BPETokenizer) EOS() []int { return append([]int(nil), t.eos...) }

// Token returns the stored text of id: the byte-level form of a vocabulary
// entry (with "Ġ" for a space) or the content of an added token, or "" for
// an unknown id.
func (t *BPETokenizer) Token(id int) string {
	if id < 0 || id >= len(t.tokens) {
		return ""
	}
	return t.tokens[id]
}

// TokenID returns the id of a vocabulary entry or added token written as
// stored (byte-level form for vocabulary entries).
func (t *BPETokenizer) TokenID(s string) (int, bool) {
	id, ok := t.vocab[s]
	return id, ok
}

// byteToRune is GPT-2's bytes_to_unicode: printable Latin-1 bytes map to
// themselves and the others to U+0100 onwards, so that every byte has a
// visible one-character symbol (a space is "Ġ", a newline "Ċ").
var byteToRune, runeToByte = func() ([256]rune, map[rune]byte) {
	var b2r [256]rune
	r2b := make(map[rune]byte, 256)
	n := 0
	for b := range 256 {
		if (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF) {
			b2r[b] = rune(b)
		} else {
			b2r[b] = rune(256 + n)
			n++
		}
		r2b[b2r[b]] = byte(b)
	}
	return b2r, r2b
}()
