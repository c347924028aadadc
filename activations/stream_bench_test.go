package activations

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// BenchmarkStream2GB writes a 2 GB float32 dump (d_model 1536, as
// DeepSeek-R1-Distill-Qwen-1.5B) and streams it in batches of 1024 rows, in
// order and shuffled. It reports the throughput and the peak resident
// memory of the streaming (target: under 300 MB, whatever the dump size).
// RISE_BENCH_BYTES sets another size; RISE_BENCH_DIR another place for it.
func BenchmarkStream2GB(b *testing.B) {
	size := int64(2 << 30)
	if s := os.Getenv("RISE_BENCH_BYTES"); s != "" {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			b.Fatalf("RISE_BENCH_BYTES=%q: %v", s, err)
		}
		size = v
	}
	const d = 1536
	rows := int(size / (4 * d))
	dir := filepath.Join(b.TempDir(), "dump")
	if env := os.Getenv("RISE_BENCH_DIR"); env != "" {
		dir = filepath.Join(env, "rise-bench-dump")
		defer os.RemoveAll(dir)
	}
	resetPeakRSS()
	w, err := Create(dir, WriterOptions{DModel: d, Layers: []int{14}, Overwrite: true})
	if err != nil {
		b.Fatal(err)
	}
	batch := make([]float32, 1024*d)
	for off := 0; off < rows; off += 1024 {
		n := min(1024, rows-off)
		for i := range batch[:n*d] {
			batch[i] = float32((off*d+i)%997) * 0.01
		}
		if err := w.WriteRows(14, batch[:n*d]); err != nil {
			b.Fatal(err)
		}
		for i := range n {
			if err := w.WriteSteps(Step{Trace: "bench", Step: off + i}); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	b.Logf("wrote %d rows x %d (%.2f GB), peak RSS while writing %d MB", rows, d, float64(size)/1e9, peakRSS()>>20)

	dump, err := Open(dir)
	if err != nil {
		b.Fatal(err)
	}
	defer dump.Close()
	for _, shuffle := range []bool{false, true} {
		name := "sequential"
		if shuffle {
			name = "shuffled"
		}
		b.Run(name, func(b *testing.B) {
			resetPeakRSS()
			b.SetBytes(dump.Layers[0].Bytes())
			epoch := uint64(0)
			for b.Loop() {
				it := dump.Layers[0].Batches(BatchOptions{Size: 1024, Shuffle: shuffle, Seed: epoch})
				n := 0
				for it.Next(context.Background()) {
					n += it.Len()
				}
				if err := it.Err(); err != nil {
					b.Fatal(err)
				}
				if n != rows {
					b.Fatalf("streamed %d rows, want %d", n, rows)
				}
				epoch++
			}
			b.ReportMetric(float64(peakRSS())/(1<<20), "peak-RSS-MB")
		})
	}
}

// peakRSS returns the process's peak resident set size in bytes (VmHWM).
func peakRSS() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// resetPeakRSS makes the kernel start the peak over from the current size
// (Linux: writing 5 to /proc/self/clear_refs).
func resetPeakRSS() { os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }
