package model

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/rise-interp/rise/internal/shared"
)

func TestStories260KGreedy(t *testing.T) {
	for _, name := range []string{"stories260K.bin", "stories260K_v1.bin"} {
		t.Run(name, func(t *testing.T) {
			m, err := LoadLlama2C(shared.Data(t, filepath.Join("stories260K", name)))
			if err != nil {
				t.Fatal(err)
			}
			if m.Dim != 64 || m.Hidden != 172 || m.Layers != 5 || m.Heads != 8 || m.KVHeads != 4 || m.Vocab != 512 || m.MaxSeq != 512 || !m.Tied {
				t.Fatalf("config %+v", m.Config)
			}
			s := m.NewSequence()
			tok := 1 // BOS
			var got []int
			for range len(shared.StoriesGreedy) {
				logits, err := m.Forward(context.Background(), []*Sequence{s}, [][]int{{tok}}, false, nil)
				if err != nil {
					t.Fatal(err)
				}
				tok = Argmax(logits)
				got = append(got, tok)
			}
			for i := range shared.StoriesGreedy {
				if got[i] != shared.StoriesGreedy[i] {
					t.Fatalf("greedy ids %v, want %v", got, shared.StoriesGreedy)
				}
			}
		})
	}
}

// loadStories loads stories260K and its tokenizer from ../shared/data.
func loadStories(t testing.TB) (*Model, Tokenizer) {
	t.Helper()
	m, tok, err := Load(shared.Stories(t))
	if err != nil {
		t.Fatal(err)
	}
	return m, tok
}
