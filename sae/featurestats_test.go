package sae

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/rise-interp/rise/activations"
)

// craftedFeatures is a layer of 50 rows of width 2 and the signed identity
// SAE that reads it: x0 = r+1 (latent 0 takes the values 1..50, latent 1
// never fires) and x1 = -3 on every fifth row (latent 3 fires 10 times with
// value 3, latent 2 never).
func craftedFeatures(t *testing.T) (*SAE, *activations.Layer) {
	t.Helper()
	x := make([]float32, 0, 100)
	for r := range 50 {
		var x1 float32
		if r%5 == 0 {
			x1 = -3
		}
		x = append(x, float32(r+1), x1)
	}
	return signedIdentitySAE(t, 2), evalTestLayer(t, x, 2)
}

func TestFeatureStatsCrafted(t *testing.T) {
	s, layer := craftedFeatures(t)
	fs, err := ComputeFeatureStats(context.Background(), s, layer, FeatureStatsOptions{BatchSize: 8})
	if err != nil {
		t.Fatal(err)
	}
	if fs.Rows != 50 || fs.DSae != 4 || fs.TopN != DefaultFeatureTopN || fs.HistBins != DefaultFeatureHistBins || fs.Layer != 3 {
		t.Fatalf("rows %d d_sae %d top_n %d bins %d layer %d", fs.Rows, fs.DSae, fs.TopN, fs.HistBins, fs.Layer)
	}

	f0 := fs.Feature(0)
	if f0.Fires != 50 || f0.Frequency != 1 || f0.Max != 50 || f0.MeanActive != 25.5 {
		t.Errorf("latent 0: fires %d freq %v max %v mean %v, want 50 1 50 25.5", f0.Fires, f0.Frequency, f0.Max, f0.MeanActive)
	}
	if len(f0.Top) != 20 {
		t.Fatalf("latent 0: %d top rows, want 20", len(f0.Top))
	}
	for i, tr := range f0.Top {
		if tr.Row != int64(49-i) || tr.Value != float32(50-i) {
			t.Errorf("latent 0 top %d: row %d value %v, want row %d value %d", i, tr.Row, tr.Value, 49-i, 50-i)
		}
	}
	// The histogram, built while the maximum grew from 1 to 50, matches a
	// count of the values into the final bins.
	checkHistogram(t, f0, func(yield func(float64) bool) {
		for v := 1; v <= 50; v++ {
			if !yield(float64(v)) {
				return
			}
		}
	})

	for _, j := range []int{1, 2} {
		f := fs.Feature(j)
		if f.Fires != 0 || f.Max != 0 || f.MeanActive != 0 || len(f.Top) != 0 || len(f.Histogram) != 0 {
			t.Errorf("dead latent %d: %+v", j, f)
		}
	}
	f3 := fs.Feature(3)
	if f3.Fires != 10 || f3.Frequency != 0.2 || f3.Max != 3 || f3.MeanActive != 3 || len(f3.Top) != 10 {
		t.Errorf("latent 3: %+v", f3)
	}
	for i, tr := range f3.Top { // equal values: earlier rows first
		if tr.Row != int64(5*i) || tr.Value != 3 {
			t.Errorf("latent 3 top %d: row %d value %v, want row %d value 3", i, tr.Row, tr.Value, 5*i)
		}
	}
	if h := f3.Histogram[len(f3.Histogram)-1]; h.Count != 10 || !(h.Lo < 3 && 3 <= h.Hi) {
		t.Errorf("latent 3: top bin %+v, want all 10 values", h)
	}

	if f := fs.Feature(4); f.Index != 4 || f.Fires != 0 || f.Top == nil {
		t.Errorf("latent out of range: %+v", f)
	}
	if f := fs.Feature(-1); f.Index != -1 || f.Fires != 0 {
		t.Errorf("negative latent: %+v", f)
	}
}

// checkHistogram counts values into f's bins (bin 0 takes everything up to
// its top edge) and compares.
func checkHistogram(t *testing.T, f FeatureSummary, values func(func(float64) bool)) {
	t.Helper()
	h := f.Histogram
	want := make([]int64, len(h))
	var total int64
	for v := range values {
		total++
		for i, b := range h {
			if v <= b.Hi && (i == 0 || v > b.Lo) {
				want[i]++
				break
			}
		}
	}
	got := make([]int64, len(h))
	for i, b := range h {
		got[i] = b.Count
		if i > 0 && b.Lo != h[i-1].Hi {
			t.Errorf("latent %d: bin %d starts at %v, bin %d ends at %v", f.Index, i, b.Lo, i-1, h[i-1].Hi)
		}
	}
	if !slices.Equal(got, want) || total != f.Fires {
		t.Errorf("latent %d histogram %v, want %v (%d values)", f.Index, got, want, total)
	}
	last := h[len(h)-1]
	if !(float64(f.Max) <= last.Hi && float64(f.Max) > last.Lo) {
		t.Errorf("latent %d: max %v is not in the top bin (%v, %v]", f.Index, f.Max, last.Lo, last.Hi)
	}
}

// TestFeatureStatsAgainstDirect compares streaming statistics, with one
// worker and with several, against a direct computation from Encode.
func TestFeatureStatsAgainstDirect(t *testing.T) {
	const d, m, n = 16, 256, 700
	x := randRows(11, n, d, 1)
	layer := evalTestLayer(t, x, d)
	s, _ := New(Standard, d, m, 0)
	s.Init(12, 1, nil, 0)
	for j := range s.BEnc {
		s.BEnc[j] = -0.5 // sparser latents, some of them dead
	}
	f := make([]float32, n*m)
	s.Encode(x, f)

	opts := FeatureStatsOptions{TopN: 7, HistBins: 12, BinsPerOctave: 2, BatchSize: 256}
	opts.Workers = 1
	one, err := ComputeFeatureStats(context.Background(), s, layer, opts)
	if err != nil {
		t.Fatal(err)
	}
	opts.Workers = 5
	many, err := ComputeFeatureStats(context.Background(), s, layer, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(one, many) {
		t.Error("statistics differ between 1 and 5 workers")
	}
	for j := range m {
		type tv struct {
			row int
			v   float32
		}
		var all []tv
		var sum float64
		for r := range n {
			if v := f[r*m+j]; v > 0 {
				all = append(all, tv{r, v})
				sum += float64(v)
			}
		}
		got := one.Feature(j)
		if got.Fires != int64(len(all)) {
			t.Fatalf("latent %d fires %d, want %d", j, got.Fires, len(all))
		}
		if len(all) == 0 {
			continue
		}
		if !near(got.MeanActive, sum/float64(len(all)), 1e-9) {
			t.Errorf("latent %d mean %v, want %v", j, got.MeanActive, sum/float64(len(all)))
		}
		slices.SortStableFunc(all, func(a, b tv) int {
			switch {
			case a.v > b.v:
				return -1
			case a.v < b.v:
				return 1
			}
			return 0
		})
		if got.Max != all[0].v {
			t.Errorf("latent %d max %v, want %v", j, got.Max, all[0].v)
		}
		want := all[:min(7, len(all))]
		if len(got.Top) != len(want) {
			t.Fatalf("latent %d: %d top rows, want %d", j, len(got.Top), len(want))
		}
		for i := range want {
			if got.Top[i].Row != int64(want[i].row) || got.Top[i].Value != want[i].v {
				t.Errorf("latent %d top %d: %+v, want row %d value %v", j, i, got.Top[i], want[i].row, want[i].v)
			}
		}
		checkHistogram(t, got, func(yield func(float64) bool) {
			for _, a := range all {
				if !yield(float64(a.v)) {
					return
				}
			}
		})
	}
}

func TestFeatureStatsSaveLoad(t *testing.T) {
	s, layer := craftedFeatures(t)
	fs, err := ComputeFeatureStats(context.Background(), s, layer, FeatureStatsOptions{TopN: 3})
	if err != nil {
		t.Fatal(err)
	}
	fs.Dataset = "somewhere/dump"
	dir := t.TempDir()
	if err := fs.Save(dir); err != nil {
		t.Fatal(err)
	}
	back, err := LoadFeatureStats(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(fs, back) {
		t.Errorf("round trip differs:\nsaved  %+v\nloaded %+v", fs, back)
	}
	if !reflect.DeepEqual(fs.Feature(0), back.Feature(0)) {
		t.Error("latent 0 differs after the round trip")
	}
	// No temporary files are left behind.
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Errorf("%d files in the directory, want 2", len(entries))
	}

	bin := filepath.Join(dir, FeatureStatsDataFile)
	good, _ := os.ReadFile(bin)
	damaged := slices.Clone(good)
	damaged[30] ^= 1
	os.WriteFile(bin, damaged, 0o644)
	if _, err := LoadFeatureStats(dir); err == nil || !strings.Contains(err.Error(), "checksum") || !strings.Contains(err.Error(), FeatureStatsDataFile) {
		t.Errorf("damaged data: %v", err)
	}
	os.WriteFile(bin, good[:len(good)-4], 0o644)
	if _, err := LoadFeatureStats(dir); err == nil || !strings.Contains(err.Error(), "expected") {
		t.Errorf("truncated data: %v", err)
	}
	os.WriteFile(filepath.Join(dir, FeatureStatsFile), []byte(`{"format":"something-else"}`), 0o644)
	if _, err := LoadFeatureStats(dir); err == nil || !strings.Contains(err.Error(), "format") {
		t.Errorf("wrong format: %v", err)
	}
	if _, err := LoadFeatureStats(t.TempDir()); err == nil || !strings.Contains(err.Error(), FeatureStatsFile) {
		t.Errorf("missing: %v", err)
	}
	if err := (&FeatureStats{DSae: 2, TopN: 1, HistBins: 2, BinsPerOctave: 1}).Save(dir); err == nil {
		t.Error("statistics with missing arrays were saved")
	}
}

func TestFeatureStatsOptionsAndCancel(t *testing.T) {
	s, layer := craftedFeatures(t)
	for _, o := range []FeatureStatsOptions{{TopN: -1}, {TopN: 5000}, {HistBins: 1}, {BinsPerOctave: 100}, {MaxRows: -2}} {
		if _, err := ComputeFeatureStats(context.Background(), s, layer, o); err == nil {
			t.Errorf("options %+v accepted", o)
		}
	}
	fs, err := ComputeFeatureStats(context.Background(), s, layer, FeatureStatsOptions{MaxRows: 10})
	if err != nil || fs.Rows != 10 || fs.Feature(0).Max != 10 {
		t.Errorf("first 10 rows: %v rows %d", err, fs.Rows)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := ComputeFeatureStats(ctx, s, layer, FeatureStatsOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v, want context.Canceled", err)
	}
}

// BenchmarkFeatureStatsLarge measures a pass at d_sae 16384.
func BenchmarkFeatureStatsLarge(b *testing.B) {
	const d, m, n = 64, 16384, 2048
	x := randRows(13, n, d, 1)
	s, _ := New(TopK, d, m, 32)
	s.Init(1, 1, nil, 0)
	acc, err := newFeatureAccumulator(s, &activations.Layer{Name: "bench"}, FeatureStatsOptions{})
	if err != nil {
		b.Fatal(err)
	}
	f := make([]float32, n*m)
	s.Encode(x, f)
	ids := make([]int, n)
	for i := range ids {
		ids[i] = i
	}
	b.ResetTimer()
	for range b.N {
		acc.add(f, ids)
	}
}
