package model

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rise-interp/rise/internal/shared"
)

const stories260KText = "Once upon a time, there was a little girl named Lily. She loved to play outside in the park."

func loadTok512(t *testing.T) *Llama2CTokenizer {
	t.Helper()
	tok, err := LoadLlama2CTokenizer(shared.Data(t, "stories260K/tok512.bin"), 512)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestLlama2CTokenizerStories(t *testing.T) {
	tok := loadTok512(t)
	if tok.VocabSize() != 512 || tok.BOS() != 1 || !slices.Equal(tok.EOS(), []int{2}) {
		t.Fatalf("VocabSize, BOS, EOS = %d, %d, %v; want 512, 1, [2]", tok.VocabSize(), tok.BOS(), tok.EOS())
	}
	got := tok.Decode(shared.StoriesGreedy, false)
	const want = "Once upon a time, there was a little girl named Lily. She loved to play"
	if got != want {
		t.Fatalf("Decode(greedy ids) = %q, want %q", got, want)
	}
	if !strings.HasPrefix(stories260KText, got) {
		t.Fatalf("Decode(greedy ids) = %q is not a prefix of %q", got, stories260KText)
	}
	// After BOS the first piece loses its dummy-prefix space too.
	if got := tok.Decode(append([]int{1}, shared.StoriesGreedy[:4]...), false); got != "Once upon a time" {
		t.Errorf("Decode(BOS + 4 ids) = %q, want %q", got, "Once upon a time")
	}
	if got := tok.Decode([]int{1, 403, 2}, true); got != "\n<s>\nOnce\n</s>\n" {
		t.Errorf("Decode with special = %q, want BOS and EOS pieces around \"Once\"", got)
	}
}

func TestLlama2CTokenizerEncodeStories(t *testing.T) {
	tok := loadTok512(t)
	ids := tok.Encode("Once upon a time", true, false)
	// The greedy generation writes these words with the same pieces the
	// encoder's merges find: " Once" " upon" " a" " time".
	if want := []int{1, 403, 407, 261, 378}; !slices.Equal(ids, want) {
		t.Fatalf("Encode(%q, bos) = %v, want %v", "Once upon a time", ids, want)
	}
	if got := tok.Decode(ids, false); got != "Once upon a time" {
		t.Fatalf("round trip = %q", got)
	}
	// The first sentence encodes to the generated ids.
	first := stories260KText[:strings.Index(stories260KText, ".")+1]
	if ids := tok.Encode(first, false, false); !slices.Equal(ids, shared.StoriesGreedy[:15]) {
		t.Errorf("Encode(%q) = %v, want %v", first, ids, shared.StoriesGreedy[:15])
	}
	for _, s := range []string{
		"", "a", " two  spaces ", "Lily's \"park\"\n\nnext line",
		"héllo wörld 日本 😀👍🏽", "\t\x01\xff\xfe invalid bytes",
	} {
		ids := tok.Encode(s, true, false)
		if got := tok.Decode(ids, false); got != s {
			t.Errorf("round trip of %q: ids %v decode to %q", s, ids, got)
		}
	}
	if ids := tok.Encode("", false, false); len(ids) != 0 {
		t.Errorf("Encode(\"\") = %v, want no ids (no dummy prefix for empty text)", ids)
	}
}

// tinyPiece is one entry of a synthetic llama2.c tokenizer.
type tinyPiece struct {
	s     string
	score float32
}

// tinyLlama2CPieces is a hand-made vocabulary: the 3 fixed tokens, the 256
// byte pieces (ids 3..258), then the pieces below from id 259.
func tinyLlama2CPieces() []tinyPiece {
	ps := []tinyPiece{{"<unk>", 0}, {"\n<s>\n", 0}, {"\n</s>\n", 0}}
	for b := range 256 {
		ps = append(ps, tinyPiece{fmt.Sprintf("<0x%02X>", b), 0})
	}
	return append(ps,
		tinyPiece{" ", -1},   // 259
		tinyPiece{"a", -1},   // 260
		tinyPiece{"b", -1},   // 261
		tinyPiece{"ab", 2},   // 262
		tinyPiece{" a", 1},   // 263
		tinyPiece{" ab", 3},  // 264
		tinyPiece{"aa", 5},   // 265
		tinyPiece{"日", -1},   // 266
		tinyPiece{" 日", -10}, // 267
	)
}

// llama2cBytes encodes pieces in the tok*.bin format.
func llama2cBytes(maxLen int, ps []tinyPiece) []byte {
	b := binary.LittleEndian.AppendUint32(nil, uint32(int32(maxLen)))
	for _, p := range ps {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(p.score))
		b = binary.LittleEndian.AppendUint32(b, uint32(len(p.s)))
		b = append(b, p.s...)
	}
	return b
}

func writeTemp(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLlama2CTokenizerMerges(t *testing.T) {
	ps := tinyLlama2CPieces()
	tok, err := LoadLlama2CTokenizer(writeTemp(t, "tok.bin", llama2cBytes(8, ps)), len(ps))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		text string
		bos  bool
		want []int
		why  string
	}{
		{"ab", false, []int{264}, `" " a b: "ab" (2) beats " a" (1), then " ab" (3)`},
		{"ab", true, []int{1, 264}, "BOS first; BOS never merges"},
		{"b", false, []int{259, 261}, `" b" is no piece`},
		{"aaa", false, []int{259, 265, 260}, `" a"(1) < "aa"(5): the leftmost "aa" wins the tie`},
		{"é", false, []int{259, 0xC3 + 3, 0xA9 + 3}, "é is no piece: its bytes C3 A9 are ids b+3"},
		{"日", false, []int{267}, `"日" is one piece found by its UTF-8 character; " 日" scores -10 > -1e10`},
		{"", true, []int{1}, "no dummy prefix for empty text"},
	} {
		if got := tok.Encode(c.text, c.bos, false); !slices.Equal(got, c.want) {
			t.Errorf("Encode(%q, %v) = %v, want %v (%s)", c.text, c.bos, got, c.want, c.why)
		}
		if got := tok.Decode(tok.Encode(c.text, c.bos, false), false); got != c.text {
			t.Errorf("round trip of %q gives %q", c.text, got)
		}
	}
	// Decoding: byte pieces become bytes, a trailing incomplete character
	// is held back until its last byte arrives.
	smile := []int{0xF0 + 3, 0x9F + 3, 0x98 + 3, 0x80 + 3} // 😀 as bytes
	for n := 1; n < 4; n++ {
		if got := tok.Decode(smile[:n], false); got != "" {
			t.Errorf("Decode(first %d bytes of 😀) = %q, want \"\"", n, got)
		}
	}
	if got := tok.Decode(smile, false); got != "😀" {
		t.Errorf("Decode(😀 bytes) = %q", got)
	}
	if got := tok.Decode([]int{260, -1, 9999, 0, 261}, false); got != "ab" {
		t.Errorf("Decode skips bad ids and <unk>: got %q, want \"ab\"", got)
	}
	if tok.Token(264) != " ab" || tok.Token(-1) != "" || tok.Token(len(ps)) != "" || tok.Score(265) != 5 {
		t.Errorf("Token/Score: %q %q %q %v", tok.Token(264), tok.Token(-1), tok.Token(len(ps)), tok.Score(265))
	}
}

func TestLlama2CTokenizerBadFiles(t *testing.T) {
	ps := tinyLlama2CPieces()
	good := llama2cBytes(8, ps)
	n := len(ps)
	withLen := func(idx int, length int32) []byte {
		b := llama2cBytes(8, ps)
		off := 4
		for i := 0; i < idx; i++ {
			off += 8 + len(ps[i].s)
		}
		binary.LittleEndian.PutUint32(b[off+4:], uint32(length))
		return b
	}
	for _, c := range []struct {
		name  string
		data  []byte
		vocab int
		want  []string
	}{
		{"empty", nil, n, []string{"expected at least a 4-byte"}},
		{"max_token_length", llama2cBytes(-3, ps), n, []string{"max_token_length is -3"}},
		{"truncated piece", good[:len(good)-2], n, []string{"token 267", "runs past the end"}},
		{"truncated header", good[:len(good)-len(" 日")-5], n, []string{"token 267", "file ends"}},
		{"absurd length", withLen(5, 1<<30), n, []string{"token 5", "length is 1073741824"}},
		{"negative length", withLen(7, -1), n, []string{"token 7", "length is -1"}},
		{"longer than max", withLen(3, 9), n, []string{"token 3", "length is 9, expected 0..8"}},
		{"vocab too large", good, n + 1, []string{"token 268", "file ends"}},
		{"vocab far too large", good, 1 << 30, []string{"vocab size 1073741824"}},
		{"vocab too small", good, n - 1, []string{"bytes follow token 266", "vocab size mismatch"}},
		{"vocab zero", good, 0, []string{"vocab size is 0, expected at least 3"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := writeTemp(t, "bad.bin", c.data)
			_, err := LoadLlama2CTokenizer(p, c.vocab)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range append(c.want, p) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
	if _, err := LoadLlama2CTokenizer(filepath.Join(t.TempDir(), "missing.bin"), 512); err == nil || !strings.Contains(err.Error(), "missing.bin") {
		t.Errorf("missing file: error %v does not name it", err)
	}
}

// FuzzLlama2CTokenizer checks that no file content makes the loader or
// the encoder panic.
func FuzzLlama2CTokenizer(f *testing.F) {
	ps := tinyLlama2CPieces()
	f.Add(llama2cBytes(8, ps), len(ps), "ab 日")
	f.Fuzz(func(t *testing.T, data []byte, vocab int, text string) {
		tok, err := parseLlama2CTokenizer("fuzz", data, vocab)
		if err != nil {
			return
		}
		tok.Decode(tok.Encode(text, true, true), true)
	})
}

// TestLlama2CMergeMatchesRunC holds the heap-based merge against run.c's
// own loop (rescan, join the best-scoring pair, leftmost on a tie) on
// random text with the real stories260K vocabulary.
func TestLlama2CMergeMatchesRunC(t *testing.T) {
	_, tk := loadStories(t)
	tok := tk.(*Llama2CTokenizer)
	runC := func(ids []int) []int {
		ids = append([]int(nil), ids...)
		for {
			best, bestID, bestIdx := float32(-1e10), -1, -1
			for i := 0; i+1 < len(ids); i++ {
				id, ok := tok.lookup[tok.pieces[ids[i]]+tok.pieces[ids[i+1]]]
				if ok && tok.scores[id] > best {
					best, bestID, bestIdx = tok.scores[id], id, i
				}
			}
			if bestIdx < 0 {
				return ids
			}
			ids[bestIdx] = bestID
			ids = append(ids[:bestIdx+1], ids[bestIdx+2:]...)
		}
	}
	rng := rand.New(rand.NewPCG(9, 9))
	words := []string{"the", "a", "Lily", "ball", " ", "  ", ".", ",", "\n", "\n\n", "once", "upon", "time", "é", "日本", "x", "q", "zz", "he", "she", "went"}
	for range 300 {
		var b strings.Builder
		for range 1 + rng.IntN(60) {
			b.WriteString(words[rng.IntN(len(words))])
			if rng.IntN(3) == 0 {
				b.WriteByte(' ')
			}
		}
		s := b.String()
		// The symbols before merging: Encode without merges is the
		// same as run.c's first phase, so build them by hand.
		pre := []int{llama2cBOS}
		if id, ok := tok.lookup[" "]; ok {
			pre = append(pre, id)
		}
		for i := 0; i < len(s); {
			j := i + 1
			for j < len(s) && j-i < 4 && s[j]&0xC0 == 0x80 {
				j++
			}
			if id, ok := tok.lookup[s[i:j]]; ok {
				pre = append(pre, id)
			} else {
				pre = tok.appendBytes(pre, s[i:j])
			}
			i = j
		}
		want := runC(pre)
		got := tok.Encode(s, true, false)
		if !slices.Equal(got, want) {
			t.Fatalf("%q: heap merge %v, run.c %v", s, got, want)
		}
	}
}
