// Command atlasbench makes the rows of make bench-atlas and judges the
// layouts drawn from them.
//
//	atlasbench rows --out DIR [--n 8192] [--d 1536] [--clusters 64] [--seed 1]
//
// writes DIR/rows.npy, n clustered unit rows (float32, C order), and DIR/sae,
// a TopK SAE (SAELens files) whose decoder columns are those rows and whose
// encoder is their transpose, so that rise atlas lays out exactly these rows.
// Each cluster is a random unit centre plus isotropic Gaussian noise of a
// spread drawn per cluster (cosine with the centre between about 0.45 and
// 0.8); a tenth of the rows belong to no cluster.
//
//	atlasbench trust ROWS.npy LAYOUT.json [LAYOUT.json...]
//
// prints, for each layout (rise's atlas.json or umap-js's bench.js output),
// its trustworthiness (Venna and Kaski 2001) with k = 15 against the rows'
// exact cosine neighbourhoods. It is written from the definition with plain
// loops and shares no code with the layouts it judges.
package main

import (
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"

	"github.com/rise-interp/rise/sae"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: atlasbench rows --out DIR | atlasbench trust ROWS.npy LAYOUT.json...")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "rows":
		err = rows(os.Args[2:])
	case "trust":
		err = trust(os.Args[2:])
	default:
		err = fmt.Errorf("expected rows or trust, found %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "atlasbench:", err)
		os.Exit(1)
	}
}

func rows(args []string) error {
	fs := flag.NewFlagSet("rows", flag.ExitOnError)
	out := fs.String("out", "", "directory to write rows.npy and sae/ to")
	n := fs.Int("n", 8192, "number of rows")
	d := fs.Int("d", 1536, "width of a row")
	clusters := fs.Int("clusters", 64, "number of clusters")
	seed := fs.Uint64("seed", 1, "random seed")
	fs.Parse(args)
	if *out == "" || *n < 2 || *d < 2 || *clusters < 1 {
		return fmt.Errorf("rows: expected --out DIR, --n and --d of at least 2 and --clusters of at least 1")
	}
	rng := rand.New(rand.NewPCG(*seed, 0xa71a5))
	unit := func(v []float64) {
		var s float64
		for _, x := range v {
			s += x * x
		}
		s = math.Sqrt(s)
		for i := range v {
			v[i] /= s
		}
	}
	centres := make([][]float64, *clusters)
	spread := make([]float64, *clusters)
	for c := range centres {
		v := make([]float64, *d)
		for i := range v {
			v[i] = rng.NormFloat64()
		}
		unit(v)
		centres[c] = v
		spread[c] = 0.75 + 1.25*rng.Float64() // noise norm over centre norm
	}
	x := make([]float32, *n**d)
	v := make([]float64, *d)
	for r := range *n {
		if rng.IntN(10) == 0 {
			for i := range v {
				v[i] = rng.NormFloat64()
			}
		} else {
			c := rng.IntN(*clusters)
			s := spread[c] / math.Sqrt(float64(*d))
			for i := range v {
				v[i] = centres[c][i] + s*rng.NormFloat64()
			}
		}
		unit(v)
		for i, f := range v {
			x[r**d+i] = float32(f)
		}
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	if err := writeNpy(filepath.Join(*out, "rows.npy"), x, *n, *d); err != nil {
		return err
	}
	s, err := sae.New(sae.TopK, *d, *n, 32)
	if err != nil {
		return err
	}
	copy(s.WDec, x)
	for j := range *n {
		for i := range *d {
			s.WEnc[i**n+j] = x[j**d+i]
		}
	}
	return sae.Save(filepath.Join(*out, "sae"), s, sae.SaveOptions{})
}

// writeNpy writes x as an n×d float32 .npy (format 1.0, C order).
func writeNpy(path string, x []float32, n, d int) error {
	hdr := fmt.Sprintf("{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d), }", n, d)
	for (10+len(hdr)+1)%64 != 0 {
		hdr += " "
	}
	hdr += "\n"
	b := make([]byte, 0, 10+len(hdr)+4*len(x))
	b = append(b, "\x93NUMPY\x01\x00"...)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(hdr)))
	b = append(b, hdr...)
	for _, v := range x {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
	}
	return os.WriteFile(path, b, 0o644)
}

// layout is the 2-D map of a layout file: rise's atlas.json (features with
// x and y) or umap-js's bench.js output (Y, n pairs).
type layout struct {
	Features []struct{ X, Y float64 } `json:"features"`
	Y        [][]float64              `json:"Y"`
	Seconds  float64                  `json:"seconds"`
}

func readLayout(path string, n int) ([]float64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var l layout
	if err := json.Unmarshal(b, &l); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	xy := make([]float64, 0, 2*n)
	for _, f := range l.Features {
		xy = append(xy, f.X, f.Y)
	}
	for i, p := range l.Y {
		if len(p) != 2 {
			return nil, fmt.Errorf("%s: Y[%d] has %d values, expected 2", path, i, len(p))
		}
		xy = append(xy, p...)
	}
	if len(xy) != 2*n {
		return nil, fmt.Errorf("%s: %d points, expected %d (one per row)", path, len(xy)/2, n)
	}
	return xy, nil
}

func trust(args []string) error {
	if len(args) < 2 {
		return fmt.Errorf("trust: expected ROWS.npy LAYOUT.json..., found %d arguments", len(args))
	}
	x, n, d, err := readNpy(args[0])
	if err != nil {
		return err
	}
	const k = 15
	if n < 3*k {
		return fmt.Errorf("trust: %s has %d rows, expected at least %d", args[0], n, 3*k)
	}
	// Unit rows, then the full matrix of cosine similarities (symmetric,
	// each pair computed once).
	for i := range n {
		row := x[i*d : (i+1)*d]
		var s float64
		for _, v := range row {
			s += float64(v) * float64(v)
		}
		inv := float32(1 / math.Sqrt(s))
		for j := range row {
			row[j] *= inv
		}
	}
	sim := make([]float32, n*n)
	workers := runtime.GOMAXPROCS(0)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				a := x[i*d : (i+1)*d]
				for j := i; j < n; j++ {
					b := x[j*d : (j+1)*d]
					var s0, s1, s2, s3 float32
					t := 0
					for ; t+4 <= d; t += 4 {
						s0 += a[t] * b[t]
						s1 += a[t+1] * b[t+1]
						s2 += a[t+2] * b[t+2]
						s3 += a[t+3] * b[t+3]
					}
					for ; t < d; t++ {
						s0 += a[t] * b[t]
					}
					s := s0 + s1 + s2 + s3
					sim[i*n+j], sim[j*n+i] = s, s
				}
			}
		}()
	}
	wg.Wait()
	for _, path := range args[1:] {
		xy, err := readLayout(path, n)
		if err != nil {
			return err
		}
		// penalty[i] = Σ over the k nearest points of i in the layout that
		// are not among its k nearest rows of (rank among the rows − k).
		penalty := make([]float64, n)
		var wg sync.WaitGroup
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				order := make([]int, 0, n)
				rank := make([]int, n)
				for i := w; i < n; i += workers {
					order = order[:0]
					for j := range n {
						if j != i {
							order = append(order, j)
						}
					}
					s := sim[i*n : (i+1)*n]
					sort.Slice(order, func(p, q int) bool {
						if s[order[p]] != s[order[q]] {
							return s[order[p]] > s[order[q]]
						}
						return order[p] < order[q]
					})
					for r, j := range order {
						rank[j] = r + 1
					}
					dist := func(j int) float64 {
						return math.Hypot(xy[2*i]-xy[2*j], xy[2*i+1]-xy[2*j+1])
					}
					sort.Slice(order, func(p, q int) bool {
						dp, dq := dist(order[p]), dist(order[q])
						if dp != dq {
							return dp < dq
						}
						return order[p] < order[q]
					})
					for _, j := range order[:k] {
						if rank[j] > k {
							penalty[i] += float64(rank[j] - k)
						}
					}
				}
			}()
		}
		wg.Wait()
		var sum float64
		for _, p := range penalty {
			sum += p
		}
		fn, fk := float64(n), float64(k)
		t := 1 - 2/(fn*fk*(2*fn-3*fk-1))*sum
		fmt.Printf("%s\t%.4f\n", path, t)
	}
	return nil
}

// readNpy reads a float32 C-order 2-D .npy.
func readNpy(path string) ([]float32, int, int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, 0, 0, err
	}
	if len(b) < 10 || string(b[:6]) != "\x93NUMPY" {
		return nil, 0, 0, fmt.Errorf("%s: expected a .npy file, found no NUMPY magic", path)
	}
	var hl, off int
	if b[6] == 1 {
		hl, off = int(binary.LittleEndian.Uint16(b[8:10])), 10
	} else {
		hl, off = int(binary.LittleEndian.Uint32(b[8:12])), 12
	}
	hdr := string(b[off : off+hl])
	var n, d int
	if i := strings.Index(hdr, "'shape': ("); i < 0 || !strings.Contains(hdr, "'<f4'") || strings.Contains(hdr, "'fortran_order': True") {
		return nil, 0, 0, fmt.Errorf("%s: expected a C-order float32 matrix, found header %s", path, hdr)
	} else if _, err := fmt.Sscanf(hdr[i+len("'shape': ("):], "%d, %d)", &n, &d); err != nil {
		return nil, 0, 0, fmt.Errorf("%s: shape in header %s: %w", path, hdr, err)
	}
	data := b[off+hl:]
	if len(data) != 4*n*d {
		return nil, 0, 0, fmt.Errorf("%s: %d data bytes, expected %d for %d×%d float32", path, len(data), 4*n*d, n, d)
	}
	x := make([]float32, n*d)
	for i := range x {
		x[i] = math.Float32frombits(binary.LittleEndian.Uint32(data[4*i:]))
	}
	return x, n, d, nil
}
