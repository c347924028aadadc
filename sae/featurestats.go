package sae

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sync"

	"github.com/rise-interp/rise/activations"
	"github.com/rise-interp/rise/internal/atomicfile"
)

// Feature statistics live next to an SAE in two files:
//
//	feature_stats.json  a small header: format, rows, d_in, d_sae, arch, layer,
//	                    top_n, hist_bins, bins_per_octave, the data file's name,
//	                    its record size, a numpy dtype for its records and its CRC-32
//	feature_stats.bin   d_sae fixed-size little-endian records, one per latent,
//	                    in latent order
//
// A record is, packed without padding:
//
//	fires       int64            rows on which the latent is non-zero
//	sum         float64          the sum of its values on those rows
//	max         float32          its largest value (0 when it never fires)
//	hist_top    int32            the histogram's top edge exponent t
//	hist        int64[hist_bins] counts of its non-zero values, log-spaced
//	top_rows    int64[top_n]     the layer rows of its largest values, largest first; -1 pads
//	top_values  float32[top_n]   those values; 0 pads
//
// With B = hist_bins and b = bins_per_octave, bin i of the histogram holds the
// values in (2^((t-B+i)/b), 2^((t-B+1+i)/b)], except that bin 0 starts at 0:
// the top edge is the smallest power of 2^(1/b) at or above the latent's
// largest value, and smaller values than the bins reach gather in bin 0. The
// fixed record size lets a reader seek straight to one latent
// (offset j·record_bytes); in numpy, np.fromfile(path, dtype) with the
// header's record_dtype reads them all.
const (
	FeatureStatsFile     = "feature_stats.json"
	FeatureStatsDataFile = "feature_stats.bin"
	FeatureStatsFormat   = "rise-feature-stats/1"
)

// Defaults and limits of FeatureStatsOptions.
const (
	DefaultFeatureTopN          = 20
	DefaultFeatureHistBins      = 32
	DefaultFeatureBinsPerOctave = 4

	maxFeatureTopN          = 1000
	maxFeatureHistBins      = 256
	maxFeatureBinsPerOctave = 64
	maxFeatureStatsDSae     = 1 << 26
)

// FeatureStatsOptions choose what ComputeFeatureStats gathers.
type FeatureStatsOptions struct {
	// MaxRows reads the first MaxRows rows of the layer; 0 means all.
	MaxRows int
	// BatchSize is the number of rows encoded at once; 0 picks a size.
	BatchSize int
	// TopN is how many of its largest activations to keep per latent
	// (default 20, at most 1000).
	TopN int
	// HistBins is the number of histogram bins per latent (default 32,
	// 2 to 256); BinsPerOctave the bins per doubling of the value
	// (default 4, 1 to 64), so that the default bins span 8 octaves below
	// each latent's largest value.
	HistBins, BinsPerOctave int
	// Workers is the number of goroutines that update the statistics of
	// a batch, each over a range of latents; 0 means GOMAXPROCS.
	Workers int
	// Progress, when not nil, is called after each batch with the rows
	// read so far and the rows to read.
	Progress func(done, total int64)
}

// FeatureStats are per-latent statistics of an SAE over a layer's rows. The
// per-latent arrays are flat: latent j's histogram is
// Hist[j*HistBins:(j+1)*HistBins] and its top activations are
// TopRows/TopValues[j*TopN:(j+1)*TopN], largest first, padded with row -1.
type FeatureStats struct {
	Rows      int    // rows read
	DIn, DSae int    // the SAE's widths
	Arch      Arch   // the SAE's architecture
	Layer     int    // the layer's number
	LayerName string // the layer's name in its dump
	Dataset   string // where the rows came from, for the record (the caller sets it)

	TopN, HistBins, BinsPerOctave int

	Fires     []int64   // [DSae] rows on which the latent is non-zero
	Sum       []float64 // [DSae] sum of its non-zero values
	Max       []float32 // [DSae] largest value, 0 when it never fires
	HistTop   []int32   // [DSae] exponent of the histogram's top edge, in 1/BinsPerOctave octaves
	Hist      []int64   // [DSae*HistBins]
	TopRows   []int64   // [DSae*TopN] layer rows, -1 for unused slots
	TopValues []float32 // [DSae*TopN]
}

// FeatureSummary is what a feature page shows about one latent.
type FeatureSummary struct {
	Index      int              `json:"index"`
	Fires      int64            `json:"fires"`
	Frequency  float64          `json:"frequency"`   // Fires / rows
	MeanActive float64          `json:"mean_active"` // mean value on the rows where it fires
	Max        float32          `json:"max"`
	Histogram  []FeatureHistBin `json:"histogram"` // log-spaced, low to high; empty when it never fires
	Top        []FeatureTopRow  `json:"top"`       // largest activations first
}

// FeatureHistBin counts a latent's non-zero values in (Lo, Hi].
type FeatureHistBin struct {
	Lo    float64 `json:"lo"`
	Hi    float64 `json:"hi"`
	Count int64   `json:"count"`
}

// FeatureTopRow is one of a latent's largest activations: the layer row
// (also the line of steps.jsonl) and the value.
type FeatureTopRow struct {
	Row   int64   `json:"row"`
	Value float32 `json:"value"`
}

// ComputeFeatureStats encodes the layer's rows in one streaming pass and
// gathers, per latent, its firing count, mean and largest value, a
// log-spaced histogram of its values and its TopN largest activations.
// Memory is one batch plus the statistics (for d_sae 16384 with the
// defaults, about 12 MiB). It stops at the next batch when ctx is done and
// returns ctx's error.
func ComputeFeatureStats(ctx context.Context, s *SAE, layer *activations.Layer, opts FeatureStatsOptions) (*FeatureStats, error) {
	if err := checkEncodeInputs(s, layer, opts.MaxRows, opts.BatchSize); err != nil {
		return nil, fmt.Errorf("feature statistics: %w", err)
	}
	acc, err := newFeatureAccumulator(s, layer, opts)
	if err != nil {
		return nil, fmt.Errorf("feature statistics: %w", err)
	}
	end := rowsToEncode(layer, opts.MaxRows)
	rows, err := s.EncodeLayer(ctx, layer, end, encodeBatchSize(s, opts.BatchSize, end), opts.Progress, func(_, f []float32, ids []int) {
		acc.add(f, ids)
	})
	if err != nil {
		return nil, fmt.Errorf("feature statistics: %w", err)
	}
	return acc.finish(rows), nil
}

// featureAccumulator updates FeatureStats batch by batch.
type featureAccumulator struct {
	fs      *FeatureStats
	topLen  []int32 // filled slots of each latent's top heap
	workers int
	bpo     float64
}

func newFeatureAccumulator(s *SAE, layer *activations.Layer, o FeatureStatsOptions) (*featureAccumulator, error) {
	o.TopN = cmp.Or(o.TopN, DefaultFeatureTopN)
	o.HistBins = cmp.Or(o.HistBins, DefaultFeatureHistBins)
	o.BinsPerOctave = cmp.Or(o.BinsPerOctave, DefaultFeatureBinsPerOctave)
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	if err := checkFeatureShape(s.DSae, o.TopN, o.HistBins, o.BinsPerOctave); err != nil {
		return nil, err
	}
	m := s.DSae
	fs := &FeatureStats{
		DIn: s.DIn, DSae: m, Arch: s.Arch, Layer: layer.Number, LayerName: layer.Name,
		TopN: o.TopN, HistBins: o.HistBins, BinsPerOctave: o.BinsPerOctave,
		Fires: make([]int64, m), Sum: make([]float64, m), Max: make([]float32, m), HistTop: make([]int32, m),
		Hist: make([]int64, m*o.HistBins), TopRows: make([]int64, m*o.TopN), TopValues: make([]float32, m*o.TopN),
	}
	return &featureAccumulator{fs: fs, topLen: make([]int32, m), workers: o.Workers, bpo: float64(o.BinsPerOctave)}, nil
}

// checkFeatureShape checks the sizes of feature statistics.
func checkFeatureShape(dSae, topN, bins, bpo int) error {
	switch {
	case dSae <= 0 || dSae > maxFeatureStatsDSae:
		return fmt.Errorf("d_sae must be between 1 and %d, got %d", maxFeatureStatsDSae, dSae)
	case topN < 1 || topN > maxFeatureTopN:
		return fmt.Errorf("top activations per latent must be between 1 and %d, got %d", maxFeatureTopN, topN)
	case bins < 2 || bins > maxFeatureHistBins:
		return fmt.Errorf("histogram bins must be between 2 and %d, got %d", maxFeatureHistBins, bins)
	case bpo < 1 || bpo > maxFeatureBinsPerOctave:
		return fmt.Errorf("histogram bins per octave must be between 1 and %d, got %d", maxFeatureBinsPerOctave, bpo)
	}
	return nil
}

// add takes the latents f [len(ids), DSae] of the rows ids. Latents are
// split into contiguous ranges, one per worker, so no two goroutines touch
// the same latent and each latent sees its rows in order.
func (a *featureAccumulator) add(f []float32, ids []int) {
	m := a.fs.DSae
	if a.workers <= 1 || len(ids)*m < 1<<15 {
		a.addRange(f, ids, 0, m)
		return
	}
	w := min(a.workers, m)
	chunk := (m + w - 1) / w
	var wg sync.WaitGroup
	for lo := 0; lo < m; lo += chunk {
		hi := min(m, lo+chunk)
		wg.Go(func() { a.addRange(f, ids, lo, hi) })
	}
	wg.Wait()
}

// addRange updates latents [lo, hi).
func (a *featureAccumulator) addRange(f []float32, ids []int, lo, hi int) {
	m := a.fs.DSae
	for r, row := range ids {
		for j, v := range f[r*m+lo : r*m+hi] {
			if v > 0 {
				a.observe(lo+j, v, int64(row))
			}
		}
	}
}

// observe records value v > 0 of latent j on layer row row.
func (a *featureAccumulator) observe(j int, v float32, row int64) {
	fs := a.fs
	fs.Fires[j]++
	fs.Sum[j] += float64(v)
	if v > fs.Max[j] {
		fs.Max[j] = v
	}

	// Histogram: bins on a fixed grid of powers of 2^(1/b), the top bin
	// ending at the running maximum's grid point; when the maximum grows,
	// the bins shift down and the lowest merge into bin 0, exactly.
	nb := fs.HistBins
	h := fs.Hist[j*nb : (j+1)*nb]
	k := histExponent(v, a.bpo)
	if fs.Fires[j] == 1 {
		fs.HistTop[j] = k
	} else if shift := int(k) - int(fs.HistTop[j]); shift > 0 {
		if shift >= nb {
			var all int64
			for _, c := range h {
				all += c
			}
			clear(h)
			h[0] = all
		} else {
			for _, c := range h[1 : shift+1] {
				h[0] += c
			}
			copy(h[1:], h[shift+1:])
			clear(h[nb-shift:])
		}
		fs.HistTop[j] = k
	}
	h[max(0, nb-1-(int(fs.HistTop[j])-int(k)))]++

	// Top activations: a min-heap by rank (value, then lower row first).
	n := fs.TopN
	rows, vals := fs.TopRows[j*n:(j+1)*n], fs.TopValues[j*n:(j+1)*n]
	if l := int(a.topLen[j]); l < n {
		rows[l], vals[l] = row, v
		topHeapUp(rows, vals, l)
		a.topLen[j]++
	} else if v > vals[0] || (v == vals[0] && row < rows[0]) {
		rows[0], vals[0] = row, v
		topHeapDown(rows, vals, 0, n)
	}
}

// histExponent is ceil(b·log2 v): v lies in (2^((k-1)/b), 2^(k/b)].
func histExponent(v float32, b float64) int32 {
	l := math.Log2(float64(v)) * b
	return int32(math.Ceil(max(-160*b, min(l, 130*b))))
}

// topRanksBelow tells whether entry i ranks below entry k: a smaller value,
// or an equal value at a later row.
func topRanksBelow(rows []int64, vals []float32, i, k int) bool {
	return vals[i] < vals[k] || (vals[i] == vals[k] && rows[i] > rows[k])
}

func topHeapUp(rows []int64, vals []float32, c int) {
	for c > 0 {
		p := (c - 1) / 2
		if !topRanksBelow(rows, vals, c, p) {
			return
		}
		rows[c], rows[p] = rows[p], rows[c]
		vals[c], vals[p] = vals[p], vals[c]
		c = p
	}
}

func topHeapDown(rows []int64, vals []float32, i, n int) {
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		c := l
		if r := l + 1; r < n && topRanksBelow(rows, vals, r, l) {
			c = r
		}
		if !topRanksBelow(rows, vals, c, i) {
			return
		}
		rows[c], rows[i] = rows[i], rows[c]
		vals[c], vals[i] = vals[i], vals[c]
		i = c
	}
}

// finish sorts every latent's top activations, largest first, pads the
// unused slots and returns the statistics.
func (a *featureAccumulator) finish(rows int) *FeatureStats {
	fs := a.fs
	fs.Rows = rows
	n := fs.TopN
	for j := range fs.DSae {
		r, v := fs.TopRows[j*n:(j+1)*n], fs.TopValues[j*n:(j+1)*n]
		l := int(a.topLen[j])
		for end := l - 1; end > 0; end-- { // heap sort: the lowest rank goes last
			r[0], r[end] = r[end], r[0]
			v[0], v[end] = v[end], v[0]
			topHeapDown(r, v, 0, end)
		}
		for i := l; i < n; i++ {
			r[i], v[i] = -1, 0
		}
	}
	return fs
}

// Feature returns the summary of latent j. For j outside [0, DSae) it
// returns a summary with only Index set, so a request for an unknown
// latent never fails.
func (fs *FeatureStats) Feature(j int) FeatureSummary {
	out := FeatureSummary{Index: j, Histogram: []FeatureHistBin{}, Top: []FeatureTopRow{}}
	if fs == nil || j < 0 || j >= fs.DSae || fs.check() != nil {
		return out
	}
	out.Fires = fs.Fires[j]
	out.Max = fs.Max[j]
	if fs.Rows > 0 {
		out.Frequency = float64(out.Fires) / float64(fs.Rows)
	}
	if out.Fires == 0 {
		return out
	}
	out.MeanActive = fs.Sum[j] / float64(out.Fires)
	nb, b := fs.HistBins, float64(fs.BinsPerOctave)
	top := int(fs.HistTop[j])
	out.Histogram = make([]FeatureHistBin, nb)
	for i, c := range fs.Hist[j*nb : (j+1)*nb] {
		hiExp := top - nb + 1 + i
		bin := FeatureHistBin{Hi: math.Exp2(float64(hiExp) / b), Count: c}
		if i > 0 {
			bin.Lo = math.Exp2(float64(hiExp-1) / b)
		}
		out.Histogram[i] = bin
	}
	n := fs.TopN
	for i, r := range fs.TopRows[j*n : (j+1)*n] {
		if r < 0 {
			break
		}
		out.Top = append(out.Top, FeatureTopRow{Row: r, Value: fs.TopValues[j*n+i]})
	}
	return out
}

// check verifies that the arrays have the lengths the sizes call for.
func (fs *FeatureStats) check() error {
	if err := checkFeatureShape(fs.DSae, fs.TopN, fs.HistBins, fs.BinsPerOctave); err != nil {
		return err
	}
	m := fs.DSae
	for _, a := range []struct {
		name string
		have int
		want int
	}{
		{"fires", len(fs.Fires), m}, {"sum", len(fs.Sum), m}, {"max", len(fs.Max), m}, {"hist_top", len(fs.HistTop), m},
		{"hist", len(fs.Hist), m * fs.HistBins}, {"top_rows", len(fs.TopRows), m * fs.TopN}, {"top_values", len(fs.TopValues), m * fs.TopN},
	} {
		if a.have != a.want {
			return fmt.Errorf("%s has %d values, expected %d for d_sae %d", a.name, a.have, a.want, m)
		}
	}
	if fs.Rows < 0 {
		return fmt.Errorf("rows must not be negative, found %d", fs.Rows)
	}
	return nil
}

// featureStatsHeader is feature_stats.json.
type featureStatsHeader struct {
	Format        string  `json:"format"`
	Rows          int     `json:"rows"`
	DIn           int     `json:"d_in"`
	DSae          int     `json:"d_sae"`
	Arch          Arch    `json:"arch"`
	Layer         int     `json:"layer"`
	LayerName     string  `json:"layer_name,omitempty"`
	Dataset       string  `json:"dataset,omitempty"`
	TopN          int     `json:"top_n"`
	HistBins      int     `json:"hist_bins"`
	BinsPerOctave int     `json:"bins_per_octave"`
	Data          string  `json:"data"`
	RecordBytes   int     `json:"record_bytes"`
	RecordDType   [][]any `json:"record_dtype"`
	CRC32         uint32  `json:"crc32"`
	Histogram     string  `json:"histogram"`
}

// featureRecordBytes is the size of one latent's record.
func featureRecordBytes(topN, bins int) int { return 8 + 8 + 4 + 4 + 8*bins + 8*topN + 4*topN }

func featureRecordDType(topN, bins int) [][]any {
	return [][]any{
		{"fires", "<i8"}, {"sum", "<f8"}, {"max", "<f4"}, {"hist_top", "<i4"},
		{"hist", "<i8", []int{bins}}, {"top_rows", "<i8", []int{topN}}, {"top_values", "<f4", []int{topN}},
	}
}

// Save writes the statistics into dir as feature_stats.json and
// feature_stats.bin, each atomically; the data file goes first and the
// header, which carries the data's checksum, last, so a reader that finds a
// header finds the data it describes.
func (fs *FeatureStats) Save(dir string) error {
	if err := fs.check(); err != nil {
		return fmt.Errorf("save feature statistics to %s: %w", dir, err)
	}
	m, nb, n := fs.DSae, fs.HistBins, fs.TopN
	rb := featureRecordBytes(n, nb)
	buf := make([]byte, m*rb)
	le := binary.LittleEndian
	for j := range m {
		b := buf[j*rb : (j+1)*rb]
		le.PutUint64(b[0:], uint64(fs.Fires[j]))
		le.PutUint64(b[8:], math.Float64bits(fs.Sum[j]))
		le.PutUint32(b[16:], math.Float32bits(fs.Max[j]))
		le.PutUint32(b[20:], uint32(fs.HistTop[j]))
		o := 24
		for _, c := range fs.Hist[j*nb : (j+1)*nb] {
			le.PutUint64(b[o:], uint64(c))
			o += 8
		}
		for _, r := range fs.TopRows[j*n : (j+1)*n] {
			le.PutUint64(b[o:], uint64(r))
			o += 8
		}
		for _, v := range fs.TopValues[j*n : (j+1)*n] {
			le.PutUint32(b[o:], math.Float32bits(v))
			o += 4
		}
	}
	h := featureStatsHeader{
		Format: FeatureStatsFormat, Rows: fs.Rows, DIn: fs.DIn, DSae: m, Arch: fs.Arch,
		Layer: fs.Layer, LayerName: fs.LayerName, Dataset: fs.Dataset,
		TopN: n, HistBins: nb, BinsPerOctave: fs.BinsPerOctave,
		Data: FeatureStatsDataFile, RecordBytes: rb, RecordDType: featureRecordDType(n, nb),
		CRC32:     crc32.ChecksumIEEE(buf),
		Histogram: "bin i holds values in (2^((hist_top-hist_bins+i)/bins_per_octave), 2^((hist_top-hist_bins+1+i)/bins_per_octave)]; bin 0 starts at 0",
	}
	var js bytes.Buffer
	enc := json.NewEncoder(&js)
	enc.SetEscapeHTML(false) // the dtypes' "<" stays readable
	enc.SetIndent("", "  ")
	if err := enc.Encode(h); err != nil {
		return fmt.Errorf("save feature statistics to %s: %w", dir, err)
	}
	if err := atomicfile.Write(filepath.Join(dir, FeatureStatsDataFile), buf); err != nil {
		return fmt.Errorf("save feature statistics to %s: %w", dir, err)
	}
	if err := atomicfile.Write(filepath.Join(dir, FeatureStatsFile), js.Bytes()); err != nil {
		return fmt.Errorf("save feature statistics to %s: %w", dir, err)
	}
	return nil
}

// LoadFeatureStats reads the statistics that Save wrote into dir, checking
// the header, the data file's size and checksum, and every row index.
func LoadFeatureStats(dir string) (*FeatureStats, error) {
	hp := filepath.Join(dir, FeatureStatsFile)
	js, err := os.ReadFile(hp)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s: no feature statistics (compute them with 'rise eval --feature-stats')", hp)
		}
		return nil, err
	}
	var h featureStatsHeader
	if err := json.Unmarshal(js, &h); err != nil {
		return nil, fmt.Errorf("%s: not a feature statistics header: %v", hp, err)
	}
	if h.Format != FeatureStatsFormat {
		return nil, fmt.Errorf("%s: format %q, expected %q", hp, h.Format, FeatureStatsFormat)
	}
	if err := checkFeatureShape(h.DSae, h.TopN, h.HistBins, h.BinsPerOctave); err != nil {
		return nil, fmt.Errorf("%s: %w", hp, err)
	}
	if h.Rows < 0 {
		return nil, fmt.Errorf("%s: rows must not be negative, found %d", hp, h.Rows)
	}
	rb := featureRecordBytes(h.TopN, h.HistBins)
	if h.RecordBytes != rb {
		return nil, fmt.Errorf("%s: record_bytes is %d, expected %d for top_n %d and hist_bins %d", hp, h.RecordBytes, rb, h.TopN, h.HistBins)
	}
	if h.Data == "" || filepath.Base(h.Data) != h.Data || h.Data == "." || h.Data == ".." {
		return nil, fmt.Errorf("%s: data %q must be a plain file name beside the header", hp, h.Data)
	}
	dp := filepath.Join(dir, h.Data)
	buf, err := os.ReadFile(dp)
	if err != nil {
		return nil, err
	}
	if want := int64(h.DSae) * int64(rb); int64(len(buf)) != want {
		return nil, fmt.Errorf("%s: %d bytes, expected %d (%d records of %d bytes, as %s says)", dp, len(buf), want, h.DSae, rb, hp)
	}
	if sum := crc32.ChecksumIEEE(buf); sum != h.CRC32 {
		return nil, fmt.Errorf("%s: checksum %08x, expected %08x from %s: the files do not belong together or one is damaged", dp, sum, h.CRC32, hp)
	}
	m, nb, n := h.DSae, h.HistBins, h.TopN
	st := &FeatureStats{
		Rows: h.Rows, DIn: h.DIn, DSae: m, Arch: h.Arch, Layer: h.Layer, LayerName: h.LayerName, Dataset: h.Dataset,
		TopN: n, HistBins: nb, BinsPerOctave: h.BinsPerOctave,
		Fires: make([]int64, m), Sum: make([]float64, m), Max: make([]float32, m), HistTop: make([]int32, m),
		Hist: make([]int64, m*nb), TopRows: make([]int64, m*n), TopValues: make([]float32, m*n),
	}
	le := binary.LittleEndian
	for j := range m {
		b := buf[j*rb : (j+1)*rb]
		st.Fires[j] = int64(le.Uint64(b[0:]))
		st.Sum[j] = math.Float64frombits(le.Uint64(b[8:]))
		st.Max[j] = math.Float32frombits(le.Uint32(b[16:]))
		st.HistTop[j] = int32(le.Uint32(b[20:]))
		if st.Fires[j] < 0 || st.Fires[j] > int64(h.Rows) {
			return nil, fmt.Errorf("%s: latent %d fires on %d rows, expected between 0 and %d", dp, j, st.Fires[j], h.Rows)
		}
		o := 24
		for i := range nb {
			st.Hist[j*nb+i] = int64(le.Uint64(b[o:]))
			o += 8
		}
		for i := range n {
			r := int64(le.Uint64(b[o:]))
			if r < -1 || r >= int64(h.Rows) {
				return nil, fmt.Errorf("%s: latent %d, top activation %d: row %d, expected -1 or a row below %d", dp, j, i, r, h.Rows)
			}
			st.TopRows[j*n+i] = r
			o += 8
		}
		for i := range n {
			st.TopValues[j*n+i] = math.Float32frombits(le.Uint32(b[o:]))
			o += 4
		}
	}
	return st, nil
}
