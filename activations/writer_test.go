package activations

import (
	"context"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// testDump writes a dump with the given layers and rows through Writer and
// returns its path and the rows written (per layer).
func testDump(t testing.TB, rows, d int, layers []int, shardRows int, dt DType) (string, map[int][]float32) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "dump")
	w, err := Create(dir, WriterOptions{Model: "test", DModel: d, Layers: layers, ShardRows: shardRows, DType: dt})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	data := map[int][]float32{}
	for _, l := range layers {
		x := make([]float32, rows*d)
		for i := range x {
			x[i] = float32(rng.NormFloat64()) + float32(l)
		}
		if dt == Float16 {
			for i := range x {
				x[i] = roundF16(x[i])
			}
		}
		// Write in uneven pieces to cross shard boundaries mid-call.
		for off := 0; off < rows; {
			n := min(rows-off, 1+rng.IntN(17))
			if err := w.WriteRows(l, x[off*d:(off+n)*d]); err != nil {
				t.Fatal(err)
			}
			off += n
		}
		data[l] = x
	}
	for i := range rows {
		label := []string{"other"}
		if i%5 == 0 {
			label = []string{"reflection"}
		}
		if err := w.WriteSteps(Step{Trace: "t" + string(rune('a'+i/10)), Step: i % 10, Text: "step text", Labels: label}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.WriteTraces(Trace{Trace: "ta", Prompt: "p", Response: "r"}); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return dir, data
}

func roundF16(v float32) float32 {
	raw := make([]byte, 2)
	encodeRow(raw, []float32{v}, Float16)
	out := make([]float32, 1)
	decodeRow(out, raw, Float16, binary.LittleEndian)
	return out[0]
}

func TestWriterRoundTrip(t *testing.T) {
	for _, dt := range []DType{Float32, Float16} {
		t.Run(dt.String(), func(t *testing.T) {
			dir, data := testDump(t, 250, 12, []int{3, 7}, 64, dt)
			d, err := Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			if d.Rows != 250 || d.DModel != 12 || len(d.Layers) != 2 || d.Kind != KindDir {
				t.Fatalf("opened %d rows, d_model %d, %d layers, kind %s; want 250, 12, 2, dir", d.Rows, d.DModel, len(d.Layers), d.Kind)
			}
			if got := len(d.Layer(3).Shards()); got != 4 {
				t.Errorf("layer 3 has %d shards, want 4 (250 rows at 64 per shard)", got)
			}
			for _, l := range d.Layers {
				var got []float32
				it := l.Batches(BatchOptions{Size: 37})
				for it.Next(context.Background()) {
					got = append(got, it.X()...)
				}
				if err := it.Err(); err != nil {
					t.Fatal(err)
				}
				want := data[l.Number]
				if len(got) != len(want) {
					t.Fatalf("layer %d: read %d values, want %d", l.Number, len(got), len(want))
				}
				for i := range want {
					if got[i] != want[i] {
						t.Fatalf("layer %d value %d: got %v, want %v", l.Number, i, got[i], want[i])
					}
				}
			}
			steps, err := ReadSteps(d.StepsPath)
			if err != nil {
				t.Fatal(err)
			}
			if len(steps) != 250 || steps[5].Labels[0] != "reflection" || steps[6].Labels[0] != "other" {
				t.Errorf("steps read back wrong: %d steps, labels %v %v", len(steps), steps[5].Labels, steps[6].Labels)
			}
		})
	}
}

func TestWriterRefusesExistingAndCleansUp(t *testing.T) {
	dir, _ := testDump(t, 10, 4, []int{0}, 0, Float32)
	if _, err := Create(dir, WriterOptions{DModel: 4, Layers: []int{0}}); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Fatalf("Create over an existing dump: got %v, want an error saying it exists", err)
	}
	// A mismatch between rows and steps fails on Close and leaves the old dump.
	w, err := Create(dir, WriterOptions{DModel: 4, Layers: []int{0}, Overwrite: true})
	if err != nil {
		t.Fatal(err)
	}
	w.WriteRows(0, make([]float32, 8))
	w.WriteSteps(Step{Trace: "a"})
	if err := w.Close(); err == nil || !strings.Contains(err.Error(), "2 rows but steps.jsonl has 1") {
		t.Fatalf("Close with 2 rows and 1 step: got %v", err)
	}
	if d, err := Open(dir); err != nil || d.Rows != 10 {
		t.Fatalf("the earlier dump was damaged: %v", err)
	}
	entries, _ := os.ReadDir(filepath.Dir(dir))
	if len(entries) != 1 {
		t.Errorf("temporary files left beside the dump: %v", entries)
	}
	// Overwrite replaces it.
	w, _ = Create(dir, WriterOptions{DModel: 4, Layers: []int{0}, Overwrite: true})
	w.WriteRows(0, make([]float32, 4))
	w.WriteSteps(Step{Trace: "a"})
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if d, err := Open(dir); err != nil || d.Rows != 1 {
		t.Fatalf("overwrite: got %v rows, err %v", d, err)
	}
}

func TestWriterRejectsNonFinite(t *testing.T) {
	w, err := Create(filepath.Join(t.TempDir(), "d"), WriterOptions{DModel: 3, Layers: []int{1}})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	err = w.WriteRows(1, []float32{1, 2, 3, 4, float32(math.Inf(1)), 6})
	if err == nil || !strings.Contains(err.Error(), "row 1 column 1") {
		t.Fatalf("got %v, want an error naming row 1 column 1", err)
	}
}

func TestStepExtraFieldsSurvive(t *testing.T) {
	in := `{"trace":"x","step":2,"text":"Wait.","labels":["reflection"],"token_start":5,"token_end":9,"judge":{"score":0.9},"a":1}`
	var s Step
	if err := s.UnmarshalJSON([]byte(in)); err != nil {
		t.Fatal(err)
	}
	out, err := s.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	want := `{"trace":"x","step":2,"text":"Wait.","labels":["reflection"],"token_start":5,"token_end":9,"a":1,"judge":{"score":0.9}}`
	if string(out) != want {
		t.Errorf("round trip:\n got %s\nwant %s", out, want)
	}
	if err := s.UnmarshalJSON([]byte(`{"trace":"x","labels":"reflection"}`)); err == nil || !strings.Contains(err.Error(), `field "labels": expected a list of strings`) {
		t.Errorf("wrong-typed labels: got %v", err)
	}
}
