package bf16

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"gonum.org/v1/gonum/blas"

	"github.com/rise-interp/rise/internal/matmul"
)

func TestToBF16RoundsToNearestEven(t *testing.T) {
	cases := []struct {
		in   uint32
		want uint16
	}{
		{0x3f800000, 0x3f80}, // 1
		{0x3f808000, 0x3f80}, // halfway, even below: down
		{0x3f818000, 0x3f82}, // halfway, odd below: up
		{0x3f808001, 0x3f81}, // above halfway: up
		{0x3f807fff, 0x3f80}, // below halfway: down
		{0x7f7fffff, 0x7f80}, // the largest float32 rounds to +Inf
		{0xff800000, 0xff80}, // -Inf
	}
	for _, c := range cases {
		if got := Round(math.Float32frombits(c.in)); got != c.want {
			t.Errorf("Round(%#08x) = %#04x, want %#04x", c.in, got, c.want)
		}
	}
	if nan := Widen(Round(float32(math.NaN()))); !math.IsNaN(float64(nan)) {
		t.Errorf("Round(NaN) widens to %v", nan)
	}
}

// TestBF16MulAdd holds MulAdd, on shapes with edges in every direction, to
// the product of the bfloat16-rounded inputs summed in float64: the kernel
// may differ from it only by its float32 sums. A and B given transposed
// (MulAddTrans, PackTrans) give the same bits.
func TestBF16MulAdd(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, sh := range [][3]int{{6, 2, 64}, {12, 64, 128}, {7, 33, 70}, {1, 1, 1}, {25, 129, 200}, {40, 17, 3}} {
		m, k, n := sh[0], sh[1], sh[2]
		lda, ldc := k+3, n+5
		a := make([]float32, m*lda)
		b := make([]float32, k*n)
		c0 := make([]float32, m*ldc)
		for _, x := range [][]float32{a, b, c0} {
			for i := range x {
				x[i] = float32(rng.NormFloat64())
			}
		}
		// The transposes, with row strides of their own.
		ldat, ldbt := m+2, k+1
		at := make([]float32, k*ldat)
		bt := make([]float32, n*ldbt)
		for i := range m {
			for q := range k {
				at[q*ldat+i] = a[i*lda+q]
			}
		}
		for q := range k {
			for j := range n {
				bt[j*ldbt+q] = b[q*n+j]
			}
		}
		want := make([]float64, len(c0))
		for i := range m {
			for j := range n {
				var s float64
				for q := range k {
					s += float64(Widen(Round(a[i*lda+q]))) * float64(Widen(Round(b[q*n+j])))
				}
				want[i*ldc+j] = float64(c0[i*ldc+j]) + s
			}
		}
		var first []float32
		for _, v := range []struct {
			name           string
			transA, transB bool
		}{{"A·B", false, false}, {"A·Bᵀᵀ", false, true}, {"Aᵀᵀ·B", true, false}, {"Aᵀᵀ·Bᵀᵀ", true, true}} {
			var p Packed
			if v.transB {
				p.PackTrans(bt, k, n, ldbt)
			} else {
				p.Pack(b, k, n, n)
			}
			c := append([]float32(nil), c0...)
			if v.transA {
				p.MulAddTrans(m, at, ldat, c, ldc)
			} else {
				p.MulAdd(m, a, lda, c, ldc)
			}
			for i := range m {
				for j := range ldc {
					got := c[i*ldc+j]
					if j >= n {
						if got != c0[i*ldc+j] {
							t.Fatalf("%dx%dx%d %s: C[%d][%d] past n changed", m, k, n, v.name, i, j)
						}
						continue
					}
					if d := math.Abs(float64(got) - want[i*ldc+j]); d > 1e-5*float64(k+1) {
						t.Fatalf("%dx%dx%d %s: C[%d][%d] = %v, want %v", m, k, n, v.name, i, j, got, want[i*ldc+j])
					}
				}
			}
			if first == nil {
				first = c
			} else if !slices.Equal(first, c) {
				t.Errorf("%dx%dx%d: %s differs from A·B", m, k, n, v.name)
			}
		}
		// A rounded once (Rows) for two products, B packed column by
		// column (PackTransFunc): the same bits twice.
		var rows Rows
		rows.Round(m, a, lda, k)
		var p Packed
		p.PackTransFunc(k, n, func(j int, dst []float32) { copy(dst, bt[j*ldbt:j*ldbt+k]) })
		for range 2 {
			c := append([]float32(nil), c0...)
			p.MulAddRows(&rows, c, ldc)
			if !slices.Equal(first, c) {
				t.Errorf("%dx%dx%d: MulAddRows differs from MulAdd", m, k, n)
			}
		}
	}
}

// TestRoundRow: the CPU's conversion (16 at a time, where it has one)
// rounds as Round does, on rows whose lengths leave every kind of tail,
// ties and infinities included.
func TestRoundRow(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, n := range []int{0, 1, 15, 16, 17, 31, 32, 33, 100} {
		src := make([]float32, n)
		for i := range src {
			src[i] = float32(rng.NormFloat64() * 1e3)
			if i%7 == 3 {
				src[i] = math.Float32frombits(0x3f808000 | uint32(i&1)<<16) // a tie, both ways
			}
		}
		if n > 5 {
			src[5] = float32(math.Inf(-1))
		}
		dst := make([]uint16, n)
		roundRow(dst, src)
		for i, v := range src {
			if dst[i] != Round(v) {
				t.Fatalf("n %d, value %d (%g): %#04x, Round gives %#04x", n, i, v, dst[i], Round(v))
			}
		}
	}
}

// TestBF16KernelSameAsGo: where the CPU has AVX512_BF16, the assembly
// kernel gives the portable loop's sums to the bit.
func TestBF16KernelSameAsGo(t *testing.T) {
	if !Native() {
		t.Skip("this CPU has no AVX512_BF16")
	}
	rng := rand.New(rand.NewPCG(3, 4))
	const kp, lda, ldc = 97, 2*97 + 6, 70
	a := make([]uint16, tileRows*lda)
	b := make([]uint16, kp*2*panelCols)
	for i := range a {
		a[i] = Round(float32(rng.NormFloat64()))
	}
	for i := range b {
		b[i] = Round(float32(rng.NormFloat64()))
	}
	c1 := make([]float32, tileRows*ldc)
	for i := range c1 {
		c1[i] = float32(rng.NormFloat64())
	}
	c2 := append([]float32(nil), c1...)
	tile(a, lda, b, kp, c1, ldc)
	tileGo(a, lda, b, kp, c2, ldc)
	for i := range c1 {
		if math.Float32bits(c1[i]) != math.Float32bits(c2[i]) {
			t.Fatalf("entry %d (row %d, column %d): kernel %v, Go %v", i, i/ldc, i%ldc, c1[i], c2[i])
		}
	}
}

// BenchmarkBF16Encoder compares the RISE recipe's encoder product (batch
// 1024, d_in 1536, d_sae 2048) in float32 through the BLAS in use and in
// bfloat16, with packing and rounding included.
func BenchmarkBF16Encoder(bm *testing.B) {
	const m, k, n = 1024, 1536, 2048
	rng := rand.New(rand.NewPCG(5, 6))
	a := make([]float32, m*k)
	b := make([]float32, k*n)
	c := make([]float32, m*n)
	for i := range a {
		a[i] = float32(rng.NormFloat64())
	}
	for i := range b {
		b[i] = float32(rng.NormFloat64())
	}
	flops := 2 * float64(m) * float64(k) * float64(n)
	bm.Run(fmt.Sprintf("f32-%s", matmul.BLASName), func(bm *testing.B) {
		for bm.Loop() {
			matmul.Gemm(blas.NoTrans, blas.NoTrans, m, n, k, 1, a, k, b, n, 1, c, n)
		}
		bm.ReportMetric(flops*float64(bm.N)/bm.Elapsed().Seconds()/1e9, "GFLOP/s")
	})
	var p Packed
	bm.Run("bf16", func(bm *testing.B) {
		if !Native() {
			bm.Skip("this CPU has no AVX512_BF16")
		}
		for bm.Loop() {
			p.Pack(b, k, n, n)
			p.MulAdd(m, a, k, c, n)
		}
		bm.ReportMetric(flops*float64(bm.N)/bm.Elapsed().Seconds()/1e9, "GFLOP/s")
	})
	bm.Run("bf16-product-only", func(bm *testing.B) {
		if !Native() {
			bm.Skip("this CPU has no AVX512_BF16")
		}
		p.Pack(b, k, n, n)
		for bm.Loop() {
			p.MulAdd(m, a, k, c, n)
		}
		bm.ReportMetric(flops*float64(bm.N)/bm.Elapsed().Seconds()/1e9, "GFLOP/s")
	})
}

// BenchmarkBF16Pack times rounding and packing the recipe's encoder
// weights (1536 x 2048), which the bfloat16 engine does every step.
func BenchmarkBF16Pack(bm *testing.B) {
	const k, n = 1536, 2048
	b := make([]float32, k*n)
	for i := range b {
		b[i] = float32(i%1000) * 0.001
	}
	var p Packed
	for bm.Loop() {
		p.Pack(b, k, n, n)
	}
}
