package activations

import (
	"archive/zip"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestStack(t *testing.T) {
	ctx := context.Background()
	a, da := testDump(t, 50, 8, []int{3}, 7, Float32)
	b, db := testDump(t, 50, 8, []int{5}, 0, Float32)
	dst := filepath.Join(t.TempDir(), "stacked")
	if err := Stack(ctx, dst, []string{a, b}, []int{10, 20}, false); err != nil {
		t.Fatal(err)
	}
	d, err := Open(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if len(d.Layers) != 2 || d.Layers[0].Number != 10 || d.Layers[1].Number != 20 || d.Rows != 50 {
		t.Fatalf("stacked dump has %d layers, %d rows", len(d.Layers), d.Rows)
	}
	for i, want := range [][]float32{da[3], db[5]} {
		got := make([]float32, len(want))
		if err := d.Layers[i].ReadRows(0, got); err != nil {
			t.Fatal(err)
		}
		for j := range want {
			if got[j] != want[j] {
				t.Fatalf("layer %d value %d: %v, want %v", d.Layers[i].Number, j, got[j], want[j])
			}
		}
	}
	st, _ := os.ReadFile(d.StepsPath)
	sa, _ := os.ReadFile(filepath.Join(a, "steps.jsonl"))
	if string(st) != string(sa) {
		t.Error("steps.jsonl of the stacked dump differs from its sources'")
	}

	// Sources that disagree are refused, and nothing is left behind.
	c, _ := testDump(t, 40, 8, []int{3}, 0, Float32)
	e, _ := testDump(t, 50, 4, []int{3}, 0, Float32)
	for _, tc := range []struct {
		srcs   []string
		layers []int
		want   string
	}{
		{[]string{a, c}, []int{1, 2}, "expected 50 rows of d_model 8"},
		{[]string{a, e}, []int{1, 2}, "expected 50 rows of d_model 8"},
		{[]string{a, b}, []int{1, 1}, "layer 1 is given twice"},
		{[]string{a, b}, []int{1}, "one layer number per source"},
		{[]string{dst}, []int{1}, "expected a dump of one layer, found 2"},
	} {
		out := filepath.Join(t.TempDir(), "x")
		err := Stack(ctx, out, tc.srcs, tc.layers, false)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Stack(%v, %v) = %v, want an error containing %q", tc.srcs, tc.layers, err, tc.want)
		}
		if _, err := os.Stat(out); err == nil {
			t.Errorf("a failed stack left %s behind", out)
		}
	}
	// Steps that differ are refused.
	f, _ := testDump(t, 50, 8, []int{3}, 0, Float32)
	os.WriteFile(filepath.Join(f, "steps.jsonl"), []byte(strings.Repeat(`{"trace":"z","step":0,"text":"x","labels":["other"]}`+"\n", 50)), 0o644)
	if err := Stack(ctx, filepath.Join(t.TempDir(), "y"), []string{a, f}, []int{1, 2}, false); err == nil || !strings.Contains(err.Error(), "same steps") {
		t.Errorf("differing steps: %v", err)
	}
}

// FuzzReadSteps feeds arbitrary steps.jsonl files to the reader: a result
// or a one-line error, never a panic.
func FuzzReadSteps(f *testing.F) {
	f.Add([]byte(`{"trace": "a", "step": 0, "text": "x", "labels": ["reflection"]}` + "\n"))
	f.Add([]byte(`{"trace": "a", "step": 0, "text": "x", "labels": "reflection"}` + "\n"))
	f.Add([]byte("{\"trace\": \"a\"}\n\n{]\n"))
	f.Add([]byte(`{"trace": 1, "step": "0", "token_start": -1, "extra": {"k": [1, 2]}}`))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(dir, "steps.jsonl")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		steps, err := ReadSteps(p)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("a multi-line error: %q", err)
			}
			return
		}
		for _, s := range steps {
			if _, err := s.MarshalJSON(); err != nil {
				t.Fatalf("a step read back does not marshal: %v", err)
			}
		}
	})
}

// FuzzOpenNpz feeds damaged .npz archives (and .npy files) to Open: a dump
// or an error, never a panic; an opened dump's rows read or fail cleanly.
func FuzzOpenNpz(f *testing.F) {
	dir0 := f.TempDir()
	src, _ := testDump(f, 6, 4, []int{3}, 0, Float32)
	shards, _ := filepath.Glob(filepath.Join(src, "*.npy"))
	npy, _ := os.ReadFile(shards[0])
	f.Add(npy, false)
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, _ := zw.Create("layer3.npy")
	w.Write(npy)
	zw.Close()
	f.Add(buf.Bytes(), true)
	f.Fuzz(func(t *testing.T, data []byte, npz bool) {
		name := "x.npy"
		if npz {
			name = "x.npz"
		}
		p := filepath.Join(dir0, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		d, err := Open(p)
		if err != nil {
			return
		}
		defer d.Close()
		for _, l := range d.Layers {
			if l.Rows > 1<<16 {
				continue
			}
			x := make([]float32, l.Rows*l.DModel)
			l.ReadRows(0, x)
		}
	})
}
