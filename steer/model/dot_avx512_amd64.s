//go:build amd64 && !purego

#include "textflag.h"
#include "hsum_amd64.h"

// The AVX-512 group kernels. For float32, bfloat16 and float16 weights:
// two rows of W with eight vectors of x, 16 lanes a register. Each run of 16 x values is loaded once for both rows
// and each run of 16 weights once for the eight vectors, so a step does
// two weight reads and eight x reads for sixteen multiply-adds (DOTX8 does
// nine reads for eight): batched decoding is bound by those reads once the
// weights are in cache.

// ZERO8 clears the sums Z0-Z7.
#define ZERO8 \
	VPXORD Z0, Z0, Z0 \
	VPXORD Z1, Z1, Z1 \
	VPXORD Z2, Z2, Z2 \
	VPXORD Z3, Z3, Z3 \
	VPXORD Z4, Z4, Z4 \
	VPXORD Z5, Z5, Z5 \
	VPXORD Z6, Z6, Z6 \
	VPXORD Z7, Z7, Z7

#define WIDEN512_BF16(off, base, r) VPMOVZXWD off(base), r; VPSLLD $16, r, r
#define WIDEN512_F16(off, base, r) VCVTPH2PS off(base), r
#define LOAD512_F32(off, base, r) VMOVUPS off(base), r

// PAIRROW multiplies the 16 x values at mem with both rows' weights (Z16,
// Z17) into the sums a (first row) and b (second).
#define PAIRROW(mem, a, b) \
	VMOVUPS mem, Z18 \
	VFMADD231PS Z18, Z16, a \
	VFMADD231PS Z18, Z17, b

// HALVE adds the upper eight lanes of z to its lower eight, y.
#define HALVE(z, y) VEXTRACTF32X8 $1, z, Y20; VADDPS Y20, y, y

// REDUCE8 folds the 16-lane sums Z<a>..Z<a+7> (as Y registers ya..) into
// eight floats at off(DX).
#define REDUCE8(z0, z1, z2, z3, z4, z5, z6, z7, y0, y1, y2, y3, y4, y5, y6, y7, x0, x1, x4, x5, off) \
	HALVE(z0, y0) \
	HALVE(z1, y1) \
	HALVE(z2, y2) \
	HALVE(z3, y3) \
	HALVE(z4, y4) \
	HALVE(z5, y5) \
	HALVE(z6, y6) \
	HALVE(z7, y7) \
	HSUM8(y0, y1, y2, y3, y4, y5, y6, y7, x0, x1, x4, x5, off)

// DOTPAIR is the body of the pair kernels (w *T, wstride int, x *float32,
// stride, n int, out *float32): the dot products of rows w and
// w+wstride (wstride in elements of ELEM bytes) with the eight vectors
// x + i·stride (stride in float32s), n values each (a positive multiple
// of 16), into out[0:8] (first row) and out[8:16] (second). STEP16 is the
// byte size of 16 weights; AHEAD how far ahead of each row the weights are
// asked for: 2048 bytes for 16-bit weights, 8192 for float32, whose rows
// stream twice the bytes per step (BenchmarkDecode, float32, batch 8:
// 48.6 and 55.8 tokens/s at 2048, 67.4 and 63.8 at 8192).
#define DOTPAIR(WIDEN, ELEM, STEP16, AHEAD) \
	MOVQ w+0(FP), SI \
	MOVQ wstride+8(FP), R11 \
	IMULQ $ELEM, R11 \
	ADDQ SI, R11 \
	MOVQ x+16(FP), DI \
	MOVQ stride+24(FP), R8 \
	SHLQ $2, R8 \
	LEAQ (R8)(R8*2), R9 \
	LEAQ (DI)(R8*4), R10 \
	MOVQ n+32(FP), CX \
	MOVQ out+40(FP), DX \
	ZERO8 \
	VPXORD Z8, Z8, Z8 \
	VPXORD Z9, Z9, Z9 \
	VPXORD Z10, Z10, Z10 \
	VPXORD Z11, Z11, Z11 \
	VPXORD Z12, Z12, Z12 \
	VPXORD Z13, Z13, Z13 \
	VPXORD Z14, Z14, Z14 \
	VPXORD Z15, Z15, Z15 \
pairloop: \
	PREFETCHT0 AHEAD(SI) \
	PREFETCHT0 AHEAD(R11) \
	WIDEN(0, SI, Z16) \
	WIDEN(0, R11, Z17) \
	PAIRROW((DI), Z0, Z8) \
	PAIRROW((DI)(R8*1), Z1, Z9) \
	PAIRROW((DI)(R8*2), Z2, Z10) \
	PAIRROW((DI)(R9*1), Z3, Z11) \
	PAIRROW((R10), Z4, Z12) \
	PAIRROW((R10)(R8*1), Z5, Z13) \
	PAIRROW((R10)(R8*2), Z6, Z14) \
	PAIRROW((R10)(R9*1), Z7, Z15) \
	ADDQ $STEP16, SI \
	ADDQ $STEP16, R11 \
	ADDQ $64, DI \
	ADDQ $64, R10 \
	SUBQ $16, CX \
	JNZ  pairloop \
	REDUCE8(Z0, Z1, Z2, Z3, Z4, Z5, Z6, Z7, Y0, Y1, Y2, Y3, Y4, Y5, Y6, Y7, X0, X1, X4, X5, 0) \
	REDUCE8(Z8, Z9, Z10, Z11, Z12, Z13, Z14, Z15, Y8, Y9, Y10, Y11, Y12, Y13, Y14, Y15, X8, X9, X12, X13, 32) \
	VZEROUPPER \
	RET

// For Q8 weights (AVX512_VNNI and AVX512BW): one row of W with eight Q8
// vectors, two blocks of 32 a register, the even block in the lower eight
// lanes and the odd one in the upper, which is how DOTQ8 keeps its two
// sums; each vector's sum is therefore DOTQ8's to the bit. Within a block
// the integer products are those of DOTQ8: |q| (VPABSB) times xq carrying
// q's sign (negated under the mask of q's sign bits), summed in fours as
// int32 (VPDPBUSD; DOTQ8's pairs in int16 cannot overflow, so the sums are
// equal).

// Q8ROW adds two blocks' products for one vector (its activations at
// xmem) to acc, with idx the lane index that picks the vector's two scale
// products out of Z28. Z17 holds the blocks' magnitudes, K1 their sign
// bits and Z18 zero.
#define Q8ROW(xmem, idx, acc) \
	VMOVDQU8    xmem, Z14 \
	VPSUBB      Z14, Z18, K1, Z14 \
	VPXORD      Z15, Z15, Z15 \
	VPDPBUSD    Z14, Z17, Z15 \
	VCVTDQ2PS   Z15, Z15 \
	VPERMPS     Z28, idx, Z13 \
	VFMADD231PS Z13, Z15, acc

// Q8IDX sets idx to the lane index of vector i: i in the lower eight
// lanes, 8+i in the upper (Z19 holds 0 and 8, R14 is scratch).
#define Q8IDX(i, idx) \
	MOVL         $i, R14 \
	VPBROADCASTD R14, idx \
	VPADDD       Z19, idx, idx

// Q8SUM ends vector i as DOTQ8 ends: its odd-block sums added to its even
// ones, the two halves added, two horizontal additions, stored at off(AX).
#define Q8SUM(z, y, x, off) \
	VEXTRACTF32X8 $1, z, Y8 \
	VADDPS        Y8, y, y \
	VEXTRACTF128  $1, y, X8 \
	VADDPS        X8, x, x \
	VHADDPS       x, x, x \
	VHADDPS       x, x, x \
	VMOVSS        x, off(AX)

// func dotBF16Pair8AVX512(w *uint16, wstride int, x *float32, stride, n int, out *float32)
TEXT ·dotBF16Pair8AVX512(SB), NOSPLIT, $0-48
	DOTPAIR(WIDEN512_BF16, 2, 32, 2048)

// func dotF16Pair8AVX512(w *uint16, wstride int, x *float32, stride, n int, out *float32)
TEXT ·dotF16Pair8AVX512(SB), NOSPLIT, $0-48
	DOTPAIR(WIDEN512_F16, 2, 32, 2048)

// func dotF32Pair8AVX512(w *float32, wstride int, x *float32, stride, n int, out *float32)
TEXT ·dotF32Pair8AVX512(SB), NOSPLIT, $0-48
	DOTPAIR(LOAD512_F32, 4, 64, 8192)

// func dotQ8x8AVX512(q *int8, scales *float32, xq *int8, xst *float32, xstride, blocks int, out *float32)
// Eight dot products at once: the Q8 row q (blocks of 32 and their scales)
// with the eight Q8 vectors xq + i·xstride (bytes), whose block scales
// xst holds block by block (xst[8·b+i] is vector i's scale of block b),
// into out[0:8]; out[i] is what dotQ8AVX2 gives for vector i, to the bit.
// Each pair of blocks multiplies its two weight scales into the sixteen
// scales of the vectors at once (Z28). blocks is positive and even.
TEXT ·dotQ8x8AVX512(SB), NOSPLIT, $0-56
	MOVQ q+0(FP), SI
	MOVQ scales+8(FP), DX
	MOVQ xq+16(FP), DI
	MOVQ xst+24(FP), BX
	MOVQ xstride+32(FP), R8
	LEAQ (R8)(R8*2), R10
	LEAQ (DI)(R8*4), R11
	MOVQ blocks+40(FP), CX
	SHRQ $1, CX
	MOVQ out+48(FP), AX
	ZERO8
	VPXORD Z18, Z18, Z18
	// Z12 spreads the pair of weight scales over the lanes with Z9: 0
	// in the lower eight, 1 in the upper; Z19 is Z9 times 8.
	MOVL         $1, R14
	VPBROADCASTD R14, Z20
	VPXORD       Z9, Z9, Z9
	MOVL         $0xff00, R14
	KMOVW        R14, K2
	VMOVDQA32    Z20, K2, Z9
	VPSLLD       $3, Z9, Z19
	Q8IDX(0, Z20)
	Q8IDX(1, Z21)
	Q8IDX(2, Z22)
	Q8IDX(3, Z23)
	Q8IDX(4, Z24)
	Q8IDX(5, Z25)
	Q8IDX(6, Z26)
	Q8IDX(7, Z27)

q8x8loop:
	PREFETCHT0 2048(SI)
	VMOVDQU8   (SI), Z16
	VPABSB     Z16, Z17
	VPMOVB2M   Z16, K1
	VMOVSD     (DX), X12
	VPERMPS    Z12, Z9, Z12
	VMULPS     (BX), Z12, Z28
	Q8ROW((DI), Z20, Z0)
	Q8ROW((DI)(R8*1), Z21, Z1)
	Q8ROW((DI)(R8*2), Z22, Z2)
	Q8ROW((DI)(R10*1), Z23, Z3)
	Q8ROW((R11), Z24, Z4)
	Q8ROW((R11)(R8*1), Z25, Z5)
	Q8ROW((R11)(R8*2), Z26, Z6)
	Q8ROW((R11)(R10*1), Z27, Z7)
	ADDQ $64, SI
	ADDQ $8, DX
	ADDQ $64, DI
	ADDQ $64, R11
	ADDQ $64, BX
	DECQ CX
	JNZ  q8x8loop

	Q8SUM(Z0, Y0, X0, 0)
	Q8SUM(Z1, Y1, X1, 4)
	Q8SUM(Z2, Y2, X2, 8)
	Q8SUM(Z3, Y3, X3, 12)
	Q8SUM(Z4, Y4, X4, 16)
	Q8SUM(Z5, Y5, X5, 20)
	Q8SUM(Z6, Y6, X6, 24)
	Q8SUM(Z7, Y7, X7, 28)
	VZEROUPPER
	RET
