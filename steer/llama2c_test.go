package steer

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// sharedData returns a path under ../shared/data, failing under CI and
// skipping elsewhere when the folder is missing.
func sharedData(t testing.TB, rel string) string {
	t.Helper()
	p := filepath.Join("..", "..", "shared", "data", rel)
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is missing: CI runs with ../shared beside the checkout", p)
		}
		t.Skipf("%s is missing", p)
	}
	return p
}

// storiesIDs are the first 20 greedy token ids of stories260K from BOS
// (../shared/data/README.md).
var storiesIDs = []int{403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426, 338, 401, 396, 267, 337}

func argmax(v []float32) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}

func TestStories260KGreedy(t *testing.T) {
	for _, name := range []string{"stories260K.bin", "stories260K_v1.bin"} {
		t.Run(name, func(t *testing.T) {
			m, err := LoadLlama2C(sharedData(t, filepath.Join("stories260K", name)))
			if err != nil {
				t.Fatal(err)
			}
			if m.Dim != 64 || m.Hidden != 172 || m.Layers != 5 || m.Heads != 8 || m.KVHeads != 4 || m.Vocab != 512 || m.MaxSeq != 512 || !m.Tied {
				t.Fatalf("config %+v", m.Config)
			}
			s := m.NewSequence()
			tok := 1 // BOS
			var got []int
			for range len(storiesIDs) {
				logits, err := m.Forward(context.Background(), []*Sequence{s}, [][]int{{tok}}, false, nil)
				if err != nil {
					t.Fatal(err)
				}
				tok = argmax(logits)
				got = append(got, tok)
			}
			for i := range storiesIDs {
				if got[i] != storiesIDs[i] {
					t.Fatalf("greedy ids %v, want %v", got, storiesIDs)
				}
			}
		})
	}
}
