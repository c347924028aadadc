package model

import (
	"encoding/binary"
	"fmt"
	"math"
	"unicode/utf8"

	"github.com/rise-interp/rise/internal/files"
	"github.com/rise-interp/rise/internal/minheap"
)

// Fixed ids of the llama2.c (SentencePiece Llama 2) vocabulary.
const (
	llama2cUNK = 0
	llama2cBOS = 1
	llama2cEOS = 2
	// llama2cByteOffset is the id of the byte-fallback token <0x00>; byte b
	// is token b+3.
	llama2cByteOffset = 3
	// llama2cMaxPieceLen bounds max_token_length so that a corrupt header
	// cannot make the loader allocate without limit.
	llama2cMaxPieceLen = 1 << 16
)

// Llama2CTokenizer is the tokenizer of Karpathy's llama2.c: a vocabulary of
// scored pieces read from a tok*.bin file, encoded with the greedy
// best-score pair merging of run.c. Id 0 is <unk>, 1 is BOS, 2 is EOS and
// ids 3..258 are the byte-fallback pieces <0x00>..<0xFF>. It is safe for
// concurrent use.
type Llama2CTokenizer struct {
	pieces []string
	scores []float32
	// lookup maps a piece to its id; on duplicate pieces the lowest id wins.
	lookup map[string]int
	// maxLen is max_token_length from the file header.
	maxLen int
}

var _ Tokenizer = (*Llama2CTokenizer)(nil)

// LoadLlama2CTokenizer reads a llama2.c tokenizer file (tokenizer.bin,
// tok512.bin, ...) holding vocabSize pieces. The format is little-endian:
// an int32 max_token_length, then for each piece a float32 score, an int32
// byte length and the bytes. Truncated files, negative or oversized
// lengths and files whose piece count differs from vocabSize are reported
// as errors naming the file and the piece index.
func LoadLlama2CTokenizer(path string, vocabSize int) (*Llama2CTokenizer, error) {
	// A tok*.bin holds a few bytes per piece: 64 MiB is far beyond any.
	data, err := files.ReadRegular(path, 64<<20, "a llama2.c tokenizer")
	if err != nil {
		return nil, fmt.Errorf("llama2.c tokenizer: %w", err)
	}
	return parseLlama2CTokenizer(path, data, vocabSize)
}

// parseLlama2CTokenizer decodes the bytes of a tok*.bin file; name is used
// in error messages.
func parseLlama2CTokenizer(name string, data []byte, vocabSize int) (*Llama2CTokenizer, error) {
	if vocabSize <= llama2cEOS {
		return nil, fmt.Errorf("llama2.c tokenizer %s: vocab size is %d, expected at least 3 (<unk>, BOS and EOS)", name, vocabSize)
	}
	if len(data) < 4 {
		return nil, fmt.Errorf("llama2.c tokenizer %s: file is %d bytes, expected at least a 4-byte max_token_length header", name, len(data))
	}
	maxLen := int(int32(binary.LittleEndian.Uint32(data)))
	if maxLen <= 0 || maxLen > llama2cMaxPieceLen {
		return nil, fmt.Errorf("llama2.c tokenizer %s: max_token_length is %d, expected 1..%d", name, maxLen, llama2cMaxPieceLen)
	}
	// Every piece takes at least 8 bytes, which bounds a plausible count
	// before anything is allocated.
	if vocabSize > (len(data)-4)/8 {
		return nil, fmt.Errorf("llama2.c tokenizer %s: vocab size %d needs at least %d bytes, file has %d", name, vocabSize, 4+8*vocabSize, len(data))
	}
	t := &Llama2CTokenizer{
		pieces: make([]string, vocabSize),
		scores: make([]float32, vocabSize),
		lookup: make(map[string]int, vocabSize),
		maxLen: maxLen,
	}
	off := 4
	for i := 0; i < vocabSize; i++ {
		if len(data)-off < 8 {
			return nil, fmt.Errorf("llama2.c tokenizer %s: token %d at byte %d: file ends, expected a score and a length (vocab size %d)", name, i, off, vocabSize)
		}
		t.scores[i] = math.Float32frombits(binary.LittleEndian.Uint32(data[off:]))
		n := int(int32(binary.LittleEndian.Uint32(data[off+4:])))
		off += 8
		if n < 0 || n > maxLen {
			return nil, fmt.Errorf("llama2.c tokenizer %s: token %d: length is %d, expected 0..%d (max_token_length)", name, i, n, maxLen)
		}
		if len(data)-off < n {
			return nil, fmt.Errorf("llama2.c tokenizer %s: token %d at byte %d: length %d runs past the end of the file (%d bytes)", name, i, off, n, len(data))
		}
		p := string(data[off : off+n])
		off += n
		t.pieces[i] = p
		if _, dup := t.lookup[p]; !dup {
			t.lookup[p] = i
		}
	}
	if off != len(data) {
		return nil, fmt.Errorf("llama2.c tokenizer %s: %d bytes follow token %d, expected the file to end after vocab size %d pieces (vocab size mismatch?)", name, len(data)-off, vocabSize-1, vocabSize)
	}
	return t, nil
}

// Encode returns the ids of text with run.c's encode: an optional BOS, the
// SentencePiece "dummy prefix" (the piece " ") when text is not empty, one
// piece per UTF-8 character or its bytes as byte-fallback pieces, then
// repeated merging of the consecutive pair whose concatenation is the
// best-scoring piece, leftmost on ties. The special flag has no effect:
// this vocabulary has no special tokens that can be written as text.
func (t *Llama2CTokenizer) Encode(text string, bos, special bool) []int {
	ids := make([]int, 0, len(text)+2)
	if bos {
		ids = append(ids, llama2cBOS)
	}
	if text != "" {
		// run.c looks the dummy prefix up without checking the result; a
		// vocabulary without " " falls back to the space byte instead.
		if id, ok := t.lookup[" "]; ok {
			ids = append(ids, id)
		} else {
			ids = t.appendBytes(ids, " ")
		}
	}
	// One piece per UTF-8 character, as run.c groups bytes: a lead byte
	// starts a new group, and a group ends before a byte that is not a
	// continuation byte or after four bytes.
	for start := 0; start < len(text); {
		end := start + 1
		for end < len(text) && end-start < 4 && text[end]&0xC0 == 0x80 {
			end++
		}
		ch := text[start:end]
		if id, ok := t.lookup[ch]; ok {
			ids = append(ids, id)
		} else {
			ids = t.appendBytes(ids, ch)
		}
		start = end
	}
	return t.merge(ids)
}

// pieceCand is a pair of neighbouring symbols that a piece of the
// vocabulary joins, as a heap entry: the pieces' versions tell whether the
// pair is still there when it comes up.
type pieceCand struct {
	score      float32
	left, rite int // symbol indices, left < rite in text order
	id         int // the joined piece
	vl, vr     int // versions of left and right when pushed
}

// betterPiece orders pieces by score, the best first, then leftmost.
func betterPiece(a, b pieceCand) bool {
	if a.score != b.score {
		return a.score > b.score
	}
	return a.left < b.left
}

// merge applies run.c's greedy merges: while some neighbouring pair joins
// into a piece, join the pair whose piece scores best (the leftmost on a
// tie). Pairs wait in a heap and symbols in a linked list, so this costs
// O(n log n) where run.c's rescans cost O(n²).
func (t *Llama2CTokenizer) merge(ids []int) []int {
	n := len(ids)
	if n < 2 {
		return ids
	}
	next, prev, ver := make([]int, n), make([]int, n), make([]int, n)
	alive := make([]bool, n)
	for i := range n {
		next[i], prev[i], alive[i] = i+1, i-1, true
	}
	next[n-1] = -1
	h := minheap.Make(betterPiece)
	push := func(l, r int) {
		if l < 0 || r < 0 {
			return
		}
		if id, ok := t.lookup[t.pieces[ids[l]]+t.pieces[ids[r]]]; ok {
			h.Push(pieceCand{score: t.scores[id], left: l, rite: r, id: id, vl: ver[l], vr: ver[r]})
		}
	}
	for i := 0; i+1 < n; i++ {
		push(i, i+1)
	}
	for h.Len() > 0 {
		c := h.Pop()
		if !alive[c.left] || !alive[c.rite] || next[c.left] != c.rite || ver[c.left] != c.vl || ver[c.rite] != c.vr {
			continue
		}
		ids[c.left] = c.id
		ver[c.left]++
		alive[c.rite] = false
		next[c.left] = next[c.rite]
		if next[c.rite] >= 0 {
			prev[next[c.rite]] = c.left
		}
		push(prev[c.left], c.left)
		push(c.left, next[c.left])
	}
	out := ids[:0]
	for i := 0; i >= 0; i = next[i] {
		out = append(out, ids[i])
	}
	return out
}

// appendBytes appends the byte-fallback ids of s, skipping bytes whose id
// is outside the vocabulary.
func (t *Llama2CTokenizer) appendBytes(ids []int, s string) []int {
	for i := 0; i < len(s); i++ {
		if id := int(s[i]) + llama2cByteOffset; id < len(t.pieces) {
			ids = append(ids, id)
		}
	}
	return ids
}

// Decode returns the text of ids as run.c's decode prints it: the leading
// space of a piece that follows BOS is dropped (it is the dummy prefix),
// and byte pieces "<0xXX>" become their byte. The leading space of the
// first piece is dropped too, so that Decode(Encode(s, false, false))
// gives s back as SentencePiece does. <unk>, BOS and EOS are left out
// unless special is set; ids outside the vocabulary are skipped. A
// trailing incomplete UTF-8 sequence is kept back.
func (t *Llama2CTokenizer) Decode(ids []int, special bool) string {
	var out []byte
	prev := llama2cBOS
	for _, id := range ids {
		if id < 0 || id >= len(t.pieces) {
			continue
		}
		if id <= llama2cEOS {
			if special {
				out = append(out, t.pieces[id]...)
			}
			prev = id
			continue
		}
		p := t.pieces[id]
		if prev == llama2cBOS && len(p) > 0 && p[0] == ' ' {
			p = p[1:]
		}
		if b, ok := llama2cBytePiece(p); ok {
			out = append(out, b)
		} else {
			out = append(out, p...)
		}
		prev = id
	}
	return string(trimIncompleteUTF8(out))
}

// llama2cBytePiece reports whether p is a byte-fallback piece "<0xXX>" and
// returns its byte.
func llama2cBytePiece(p string) (byte, bool) {
	if len(p) != 6 || p[:3] != "<0x" || p[5] != '>' {
		return 0, false
	}
	hi, ok1 := tokHexDigit(p[3])
	lo, ok2 := tokHexDigit(p[4])
	if !ok1 || !ok2 {
		return 0, false
	}
	return hi<<4 | lo, true
}

// tokHexDigit returns the value of one hexadecimal digit.
func tokHexDigit(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// trimIncompleteUTF8 drops a trailing prefix of a multi-byte UTF-8
// character that is not complete yet. Invalid bytes are kept: only a
// sequence that more bytes could still complete is held back.
func trimIncompleteUTF8(b []byte) []byte {
	for i := len(b) - 1; i >= 0 && i >= len(b)-utf8.UTFMax; i-- {
		if utf8.RuneStart(b[i]) {
			if !utf8.FullRune(b[i:]) {
				return b[:i]
			}
			return b
		}
	}
	return b
}

// VocabSize returns the number of pieces.
func (t *Llama2CTokenizer) VocabSize() int { return len(t.pieces) }

// BOS returns 1, the llama2.c beginning-of-sequence id.
func (t *Llama2CTokenizer) BOS() int { return llama2cBOS }

// EOS returns [2], the llama2.c end-of-sequence id.
func (t *Llama2CTokenizer) EOS() []int { return []int{llama2cEOS} }

// Token returns the piece of id as stored in the file (with " " for the
// SentencePiece word boundary), or "" for an id outside the vocabulary.
func (t *Llama2CTokenizer) Token(id int) string {
	if id < 0 || id >= len(t.pieces) {
		return ""
	}
	return t.pieces[id]
}

// Score returns the merge score of id, or 0 for an id outside the
// vocabulary.
func (t *Llama2CTokenizer) Score(id int) float32 {
	if id < 0 || id >= len(t.pieces) {
		return 0
	}
	return t.scores[id]
}
