package model

// The dot-product kernels of 16-bit and 8-bit weights with float32
// activations. Each weight is widened exactly to float32 (a bfloat16 by a
// shift, a float16 by table or by F16C, a Q8 weight as int8 times its
// block's scale) and the products are summed in float32: the pure-Go
// kernels keep four partial sums (element i goes to sum i mod 4) added as
// (s0+s1)+(s2+s3); the AVX2 kernels keep 8-lane partial sums with fused
// multiply-adds. Either way the result is the float32 dot product of the
// widened row, summed in another order than one sequential loop would, so
// it is within the usual summation bound, n·2⁻²⁴·Σ|wᵢxᵢ| (to first
// order), of the exact dot product of the widened weights.
//
// Q8 rows meet Q8 vectors: a decoding step quantises each activation
// vector in blocks of 32 (quantizeVector: as the weights are, but ties to
// even), as llama.cpp's Q8_0 matrix-vector products do, and a block's products are summed as
// integers, exactly, then multiplied by both blocks' scales. The result is
// the float32 dot product of the widened weights with the widened
// (quantised) activations, within the same bound.

// setOrAdd sets (with add, adds to) o[i] dot(i) for every i.
func setOrAdd(o []float32, add bool, dot func(i int) float32) {
	for i := range o {
		if d := dot(i); add {
			o[i] += d
		} else {
			o[i] = d
		}
	}
}

// dot16Rows sets (with add, adds to) o[i] the dot product of row i of the
// 16-bit rows w (dtype BF16 or F16) with x.
func dot16Rows(d DType, o []float32, w []uint16, x []float32, add bool) {
	c := len(x)
	setOrAdd(o, add, func(i int) float32 { return dot16(d, w[i*c:(i+1)*c], x) })
}

// dotQ8Rows is dot16Rows for Q8 rows and a Q8 vector: q holds the rows'
// weights and scales their blocks' scales, xq and xs the vector's. With
// prefetch the kernel asks for the weights ahead of it (the first of
// several vectors to meet the rows, which the others then find in cache).
func dotQ8Rows(o []float32, q []int8, scales []float32, xq []int8, xs []float32, add, prefetch bool) {
	c := len(xq)
	nb := len(xs)
	setOrAdd(o, add, func(i int) float32 {
		return dotQ8(q[i*c:(i+1)*c], scales[i*nb:(i+1)*nb], xq, xs, prefetch)
	})
}

// dot16Go is the pure-Go 16-bit kernel of dtype d (BF16 or F16).
func dot16Go(d DType, w []uint16, x []float32) float32 {
	if d == BF16 {
		return dotBF16Go(w, x)
	}
	return dotF16Go(w, x)
}

// dotBF16Go is the pure-Go bfloat16 kernel.
func dotBF16Go(w []uint16, x []float32) float32 {
	w = w[:len(x)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(x); i += 4 {
		s0 += bf16ToF32(w[i]) * x[i]
		s1 += bf16ToF32(w[i+1]) * x[i+1]
		s2 += bf16ToF32(w[i+2]) * x[i+2]
		s3 += bf16ToF32(w[i+3]) * x[i+3]
	}
	for ; i < len(x); i++ {
		s0 += bf16ToF32(w[i]) * x[i]
	}
	return (s0 + s1) + (s2 + s3)
}

// dotF16Go is the pure-Go float16 kernel.
func dotF16Go(w []uint16, x []float32) float32 {
	t := f16Table()
	w = w[:len(x)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(x); i += 4 {
		s0 += t[w[i]] * x[i]
		s1 += t[w[i+1]] * x[i+1]
		s2 += t[w[i+2]] * x[i+2]
		s3 += t[w[i+3]] * x[i+3]
	}
	for ; i < len(x); i++ {
		s0 += t[w[i]] * x[i]
	}
	return (s0 + s1) + (s2 + s3)
}

// dotQ8Go is the pure-Go Q8 kernel: each block's integer sum of products
// times the product of the two scales.
func dotQ8Go(q []int8, scales []float32, xq []int8, xs []float32) float32 {
	q = q[:len(xq)]
	var sum float32
	for b, s := range scales[:len(xs)] {
		lo := b * Q8Block
		hi := min(len(xq), lo+Q8Block)
		var acc int32
		for i := lo; i < hi; i++ {
			acc += int32(q[i]) * int32(xq[i])
		}
		sum += float32(acc) * (s * xs[b])
	}
	return sum
}

// widenBF16Go writes the bfloat16 values src as float32 into dst.
func widenBF16Go(dst []float32, src []uint16) {
	dst = dst[:len(src)]
	for i, h := range src {
		dst[i] = bf16ToF32(h)
	}
}

// widenF16Go writes the float16 values src as float32 into dst.
func widenF16Go(dst []float32, src []uint16) {
	t := f16Table()
	dst = dst[:len(src)]
	for i, h := range src {
		dst[i] = t[h]
	}
}

// widen16Go is the pure-Go widening of 16-bit values of dtype d (BF16 or
// F16).
func widen16Go(d DType, dst []float32, src []uint16) {
	if d == BF16 {
		widenBF16Go(dst, src)
	} else {
		widenF16Go(dst, src)
	}
}

// widenQ8Go writes one row (or the tail of one) of Q8 blocks as float32
// into dst: q[i] times the scale of its block of Q8Block.
func widenQ8Go(dst []float32, q []int8, scales []float32) {
	dst = dst[:len(q)]
	for b, s := range scales {
		lo := b * Q8Block
		for i := lo; i < min(len(q), lo+Q8Block); i++ {
			dst[i] = float32(q[i]) * s
		}
	}
}
