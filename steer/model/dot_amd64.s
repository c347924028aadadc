//go:build amd64 && !purego

#include "textflag.h"
#include "hsum_amd64.h"

// The 16-bit kernels share their bodies: WIDEN(off, reg) widens the 8
// weights at off(SI) into reg (a bfloat16 by a shift into the upper
// half, a float16 by F16C).
#define WIDEN_BF16(off, r) VPMOVZXWD off(SI), r; VPSLLD $16, r, r
#define WIDEN_F16(off, r) VCVTPH2PS off(SI), r
// The group kernels also take float32 weights, loaded as they are.
#define LOAD_F32(off, r) VMOVUPS off(SI), r

// ZEROY4 and ZEROY8 clear the sums Y0-Y3 and Y0-Y7 (dot_avx512_amd64.s
// has its own ZERO8, of Z0-Z7).
#define ZEROY4 VXORPS Y0, Y0, Y0; VXORPS Y1, Y1, Y1; VXORPS Y2, Y2, Y2; VXORPS Y3, Y3, Y3
#define ZEROY8 ZEROY4; VXORPS Y4, Y4, Y4; VXORPS Y5, Y5, Y5; VXORPS Y6, Y6, Y6; VXORPS Y7, Y7, Y7

// SUMY0 adds up the eight lanes of Y0 into the low lane of X0.
#define SUMY0 VEXTRACTF128 $1, Y0, X1; VADDPS X1, X0, X0; VHADDPS X0, X0, X0; VHADDPS X0, X0, X0

// DOT16 is the body of dotBF16AVX2 and dotF16AVX2: four 8-lane sums,
// 32 weights a step, then 8; n is a positive multiple of 8.
#define DOT16(WIDEN) \
	MOVQ w+0(FP), SI \
	MOVQ x+8(FP), DI \
	MOVQ n+16(FP), CX \
	ZEROY4 \
loop32: \
	CMPQ CX, $32 \
	JL   loop8 \
	WIDEN(0, Y4) \
	WIDEN(16, Y5) \
	WIDEN(32, Y6) \
	WIDEN(48, Y7) \
	VFMADD231PS (DI), Y4, Y0 \
	VFMADD231PS 32(DI), Y5, Y1 \
	VFMADD231PS 64(DI), Y6, Y2 \
	VFMADD231PS 96(DI), Y7, Y3 \
	ADDQ $64, SI \
	ADDQ $128, DI \
	SUBQ $32, CX \
	JMP  loop32 \
loop8: \
	CMPQ CX, $8 \
	JL   done \
	WIDEN(0, Y4) \
	VFMADD231PS (DI), Y4, Y0 \
	ADDQ $16, SI \
	ADDQ $32, DI \
	SUBQ $8, CX \
	JMP  loop8 \
done: \
	VADDPS       Y1, Y0, Y0 \
	VADDPS       Y3, Y2, Y2 \
	VADDPS       Y2, Y0, Y0 \
	SUMY0 \
	VZEROUPPER \
	MOVSS X0, ret+24(FP) \
	RET

// WIDEN16 is the body of widenBF16AVX2 and widenF16AVX2 (dst *float32,
// src *uint16, n int): the n 16-bit values at src widened by WIDEN to
// float32 at dst, 8 a step; n is a positive multiple of 8.
#define WIDEN16(WIDEN) \
	MOVQ dst+0(FP), DI \
	MOVQ src+8(FP), SI \
	MOVQ n+16(FP), CX \
loop: \
	WIDEN(0, Y0) \
	VMOVUPS Y0, (DI) \
	ADDQ $16, SI \
	ADDQ $32, DI \
	SUBQ $8, CX \
	JNZ  loop \
	VZEROUPPER \
	RET

// GROUPARGS starts a group kernel (w *T, x *float32, stride, n int, out
// *float32): w in SI, x in DI, the stride in bytes in R8 and three times
// it in R9, n in CX, out in DX, and the eight sums Y0-Y7 zero.
#define GROUPARGS \
	MOVQ w+0(FP), SI \
	MOVQ x+8(FP), DI \
	MOVQ stride+16(FP), R8 \
	SHLQ $2, R8 \
	LEAQ (R8)(R8*2), R9 \
	MOVQ n+24(FP), CX \
	MOVQ out+32(FP), DX \
	ZEROY8

// DOTX4 is the body of dotBF16x4AVX2, dotF16x4AVX2 and dotF32x4AVX2
// (WIDEN reads 8 weights, HALF is the byte offset of the next 8 and
// STEP16 that of the next 16): four dot
// products at once, w (n values, n a positive multiple of 8) with the
// four vectors x, x+stride, x+2·stride and x+3·stride (stride in
// float32s), into out[0:4]; each weight is widened once for the four.
// Two runs of 8 weights a step, each into its own four sums, so that
// eight multiply-add chains are in flight. Batched products are bound by
// arithmetic, not by memory, and the hardware prefetcher falls behind
// them: the weights 2 KiB ahead are asked for in advance (on a
// Qwen2-0.5B shape, batch 8 decodes 70 tokens/s without, 85-88 with).
#define DOTX4(WIDEN, HALF, STEP16) \
	GROUPARGS \
loop16: \
	CMPQ CX, $16 \
	JL   loop8 \
	PREFETCHT0 2048(SI) \
	WIDEN(0, Y8) \
	WIDEN(HALF, Y9) \
	VFMADD231PS (DI), Y8, Y0 \
	VFMADD231PS (DI)(R8*1), Y8, Y1 \
	VFMADD231PS (DI)(R8*2), Y8, Y2 \
	VFMADD231PS (DI)(R9*1), Y8, Y3 \
	VFMADD231PS 32(DI), Y9, Y4 \
	VFMADD231PS 32(DI)(R8*1), Y9, Y5 \
	VFMADD231PS 32(DI)(R8*2), Y9, Y6 \
	VFMADD231PS 32(DI)(R9*1), Y9, Y7 \
	ADDQ $STEP16, SI \
	ADDQ $64, DI \
	SUBQ $16, CX \
	JMP  loop16 \
loop8: \
	CMPQ CX, $8 \
	JL   done \
	WIDEN(0, Y8) \
	VFMADD231PS (DI), Y8, Y0 \
	VFMADD231PS (DI)(R8*1), Y8, Y1 \
	VFMADD231PS (DI)(R8*2), Y8, Y2 \
	VFMADD231PS (DI)(R9*1), Y8, Y3 \
done: \
	VADDPS Y4, Y0, Y0 \
	VADDPS Y5, Y1, Y1 \
	VADDPS Y6, Y2, Y2 \
	VADDPS Y7, Y3, Y3 \
	VHADDPS      Y1, Y0, Y0 \
	VHADDPS      Y3, Y2, Y2 \
	VHADDPS      Y2, Y0, Y0 \
	VEXTRACTF128 $1, Y0, X1 \
	VADDPS       X1, X0, X0 \
	VMOVUPS      X0, (DX) \
	VZEROUPPER \
	RET

// DOTX8 is the body of dotBF16x8AVX2, dotF16x8AVX2 and dotF32x8AVX2
// (STEP8 is the byte size of 8 weights): eight dot products at once, w (n
// values, n a positive multiple of 8) with the eight vectors x + i·stride
// (stride in float32s), into out[0:8]. Each run of 8 weights is read (and
// widened) once for the eight vectors, one 8-lane sum each: eight
// multiply-add chains in flight, and half the weight reads of DOTX4 per
// product (BenchmarkGroupKernels, bfloat16, one core: 36 GMAC/s against
// DOTX4's 31).
#define DOTX8(WIDEN, STEP8) \
	GROUPARGS \
	LEAQ (DI)(R8*4), R10 \
loop8: \
	PREFETCHT0 2048(SI) \
	WIDEN(0, Y8) \
	VFMADD231PS (DI), Y8, Y0 \
	VFMADD231PS (DI)(R8*1), Y8, Y1 \
	VFMADD231PS (DI)(R8*2), Y8, Y2 \
	VFMADD231PS (DI)(R9*1), Y8, Y3 \
	VFMADD231PS (R10), Y8, Y4 \
	VFMADD231PS (R10)(R8*1), Y8, Y5 \
	VFMADD231PS (R10)(R8*2), Y8, Y6 \
	VFMADD231PS (R10)(R9*1), Y8, Y7 \
	ADDQ $STEP8, SI \
	ADDQ $32, DI \
	ADDQ $32, R10 \
	SUBQ $8, CX \
	JNZ  loop8 \
	HSUM8(Y0, Y1, Y2, Y3, Y4, Y5, Y6, Y7, X0, X1, X4, X5, 0) \
	VZEROUPPER \
	RET

// Q8BLOCK adds one block's products (weights at off(SI), activations at
// off(DI), scales at soff(DX) and soff(BX)) to the 8-lane sums acc.
#define Q8BLOCK(off, soff, acc) \
	VMOVDQU    off(SI), Y4 \
	VMOVDQU    off(DI), Y5 \
	VPSIGNB    Y4, Y4, Y6 \
	VPSIGNB    Y4, Y5, Y5 \
	VPMADDUBSW Y5, Y6, Y6 \
	VPMADDWD   Y15, Y6, Y6 \
	VCVTDQ2PS  Y6, Y6 \
	VMOVSS     soff(DX), X7 \
	VMULSS     soff(BX), X7, X7 \
	VBROADCASTSS X7, Y7 \
	VFMADD231PS Y7, Y6, acc

// DOTQ8 is the body of dotQ8AVX2 and dotQ8PrefetchAVX2: q (blocks of 32
// weights and their scales) with xq (the same for activations). Within a
// block the products are summed as integers: |q| times xq carrying q's
// sign (VPSIGNB), multiplied and added in pairs as int16 (VPMADDUBSW;
// |q|, |xq| <= 127, so a pair's sum fits) and in fours as int32 (VPMADDWD
// by ones). The eight int32 sums become float32 and are added, times the
// product of the two scales, to the running sums (two of them, for
// alternate blocks). PF(off) may ask for the weights at off(SI) ahead.
#define DOTQ8(PF) \
	MOVQ q+0(FP), SI \
	MOVQ scales+8(FP), DX \
	MOVQ xq+16(FP), DI \
	MOVQ xs+24(FP), BX \
	MOVQ blocks+32(FP), CX \
	VXORPS Y0, Y0, Y0 \
	VXORPS Y1, Y1, Y1 \
	MOVL $0x00010001, AX \
	MOVQ AX, X15 \
	VPBROADCASTD X15, Y15 \
loop2: \
	CMPQ CX, $2 \
	JL   loop1 \
	PF(2048) \
	Q8BLOCK(0, 0, Y0) \
	Q8BLOCK(32, 4, Y1) \
	ADDQ $64, SI \
	ADDQ $64, DI \
	ADDQ $8, DX \
	ADDQ $8, BX \
	SUBQ $2, CX \
	JMP  loop2 \
loop1: \
	CMPQ CX, $1 \
	JL   done \
	Q8BLOCK(0, 0, Y0) \
done: \
	VADDPS       Y1, Y0, Y0 \
	SUMY0 \
	VZEROUPPER \
	MOVSS X0, ret+40(FP) \
	RET

// Q8VEC adds one block's products for one vector (its activations at
// xmem, its block scale at smem) to acc; the block's weights are in Y8,
// their magnitudes in Y9 and the weights' block scale in X10. The same
// operations in the same order as Q8BLOCK, so that a vector's sum is the
// same to the bit whichever kernel computes it.
#define Q8VEC(xmem, smem, acc) \
	VMOVDQU    xmem, Y11 \
	VPSIGNB    Y8, Y11, Y11 \
	VPMADDUBSW Y11, Y9, Y12 \
	VPMADDWD   Y15, Y12, Y12 \
	VCVTDQ2PS  Y12, Y12 \
	VMULSS     smem, X10, X13 \
	VBROADCASTSS X13, Y13 \
	VFMADD231PS Y13, Y12, acc

// Q8BLOCKX4 is Q8VEC for the four vectors of dotQ8x4AVX2, the block's
// weights read once.
#define Q8BLOCKX4(off, soff, a0, a1, a2, a3) \
	VMOVDQU off(SI), Y8 \
	VPSIGNB Y8, Y8, Y9 \
	VMOVSS  soff(DX), X10 \
	Q8VEC(off(DI), soff(BX), a0) \
	Q8VEC(off(DI)(R8*1), soff(BX)(R9*1), a1) \
	Q8VEC(off(DI)(R8*2), soff(BX)(R9*2), a2) \
	Q8VEC(off(DI)(R10*1), soff(BX)(R11*1), a3)

// func dotQ8x4AVX2(q *int8, scales *float32, xq *int8, xs *float32, xstride, sstride, blocks int, out *float32)
// Four dot products at once: the Q8 row q (blocks of 32 and their scales)
// with the four Q8 vectors xq + i·xstride (bytes), their scales xs +
// i·sstride (float32s), into out[0:4]. Each vector keeps DOTQ8's two sums
// (even and odd blocks) and its final additions, so out[i] is what
// dotQ8AVX2 gives for vector i, to the bit. blocks is positive.
TEXT ·dotQ8x4AVX2(SB), NOSPLIT, $0-64
	MOVQ q+0(FP), SI
	MOVQ scales+8(FP), DX
	MOVQ xq+16(FP), DI
	MOVQ xs+24(FP), BX
	MOVQ xstride+32(FP), R8
	LEAQ (R8)(R8*2), R10
	MOVQ sstride+40(FP), R9
	SHLQ $2, R9
	LEAQ (R9)(R9*2), R11
	MOVQ blocks+48(FP), CX
	MOVQ out+56(FP), AX
	ZEROY8
	MOVL $0x00010001, R12
	MOVQ R12, X15
	VPBROADCASTD X15, Y15

q8x4loop2:
	CMPQ CX, $2
	JL   q8x4loop1
	PREFETCHT0 2048(SI)
	Q8BLOCKX4(0, 0, Y0, Y1, Y2, Y3)
	Q8BLOCKX4(32, 4, Y4, Y5, Y6, Y7)
	ADDQ $64, SI
	ADDQ $64, DI
	ADDQ $8, DX
	ADDQ $8, BX
	SUBQ $2, CX
	JMP  q8x4loop2

q8x4loop1:
	CMPQ CX, $1
	JL   q8x4done
	Q8BLOCKX4(0, 0, Y0, Y1, Y2, Y3)

q8x4done:
	// Per vector: even + odd sums, the two halves added, then two
	// horizontal additions, as DOTQ8 ends, four vectors side by side.
	VADDPS       Y4, Y0, Y0
	VADDPS       Y5, Y1, Y1
	VADDPS       Y6, Y2, Y2
	VADDPS       Y7, Y3, Y3
	VEXTRACTF128 $1, Y0, X4
	VADDPS       X4, X0, X0
	VEXTRACTF128 $1, Y1, X5
	VADDPS       X5, X1, X1
	VEXTRACTF128 $1, Y2, X6
	VADDPS       X6, X2, X2
	VEXTRACTF128 $1, Y3, X7
	VADDPS       X7, X3, X3
	VHADDPS      X1, X0, X0
	VHADDPS      X3, X2, X2
	VHADDPS      X2, X0, X0
	VMOVUPS      X0, (AX)
	VZEROUPPER
	RET

#define NOPREFETCH(off)
#define PREFETCH(off) PREFETCHT0 off(SI)

// func dotBF16AVX2(w *uint16, x *float32, n int) float32
TEXT ·dotBF16AVX2(SB), NOSPLIT, $0-28
	DOT16(WIDEN_BF16)

// func dotF16AVX2(w *uint16, x *float32, n int) float32
TEXT ·dotF16AVX2(SB), NOSPLIT, $0-28
	DOT16(WIDEN_F16)

// func dotBF16x4AVX2(w *uint16, x *float32, stride int, n int, out *float32)
TEXT ·dotBF16x4AVX2(SB), NOSPLIT, $0-40
	DOTX4(WIDEN_BF16, 16, 32)

// func dotF16x4AVX2(w *uint16, x *float32, stride int, n int, out *float32)
TEXT ·dotF16x4AVX2(SB), NOSPLIT, $0-40
	DOTX4(WIDEN_F16, 16, 32)

// func dotF32x4AVX2(w *float32, x *float32, stride int, n int, out *float32)
TEXT ·dotF32x4AVX2(SB), NOSPLIT, $0-40
	DOTX4(LOAD_F32, 32, 64)

// func dotBF16x8AVX2(w *uint16, x *float32, stride, n int, out *float32)
TEXT ·dotBF16x8AVX2(SB), NOSPLIT, $0-40
	DOTX8(WIDEN_BF16, 16)

// func dotF16x8AVX2(w *uint16, x *float32, stride, n int, out *float32)
TEXT ·dotF16x8AVX2(SB), NOSPLIT, $0-40
	DOTX8(WIDEN_F16, 16)

// func dotF32x8AVX2(w *float32, x *float32, stride, n int, out *float32)
TEXT ·dotF32x8AVX2(SB), NOSPLIT, $0-40
	DOTX8(LOAD_F32, 32)

// func dotQ8AVX2(q *int8, scales *float32, xq *int8, xs *float32, blocks int) float32
// blocks is positive.
TEXT ·dotQ8AVX2(SB), NOSPLIT, $0-44
	DOTQ8(NOPREFETCH)

// func dotQ8PrefetchAVX2(q *int8, scales *float32, xq *int8, xs *float32, blocks int) float32
// dotQ8AVX2 asking for the weights 2 KiB ahead, for the first of several
// activation vectors to meet the rows (see DOTX4).
TEXT ·dotQ8PrefetchAVX2(SB), NOSPLIT, $0-44
	DOTQ8(PREFETCH)

// func cpuid1ECX() uint32
TEXT ·cpuid1ECX(SB), NOSPLIT, $0-4
	MOVL $1, AX
	XORL CX, CX
	CPUID
	MOVL CX, ret+0(FP)
	RET

// func widenBF16AVX2(dst *float32, src *uint16, n int)
TEXT ·widenBF16AVX2(SB), NOSPLIT, $0-24
	WIDEN16(WIDEN_BF16)

// func widenF16AVX2(dst *float32, src *uint16, n int)
TEXT ·widenF16AVX2(SB), NOSPLIT, $0-24
	WIDEN16(WIDEN_F16)

// func widenQ8AVX2(dst *float32, q *int8, scales *float32, blocks int)
// Each block is 32 weights and one scale; blocks is positive.
TEXT ·widenQ8AVX2(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ q+8(FP), SI
	MOVQ scales+16(FP), DX
	MOVQ blocks+24(FP), CX

wq8loop:
	VBROADCASTSS (DX), Y8
	VPMOVSXBD (SI), Y4
	VPMOVSXBD 8(SI), Y5
	VPMOVSXBD 16(SI), Y6
	VPMOVSXBD 24(SI), Y7
	VCVTDQ2PS Y4, Y4
	VCVTDQ2PS Y5, Y5
	VCVTDQ2PS Y6, Y6
	VCVTDQ2PS Y7, Y7
	VMULPS    Y8, Y4, Y4
	VMULPS    Y8, Y5, Y5
	VMULPS    Y8, Y6, Y6
	VMULPS    Y8, Y7, Y7
	VMOVUPS   Y4, (DI)
	VMOVUPS   Y5, 32(DI)
	VMOVUPS   Y6, 64(DI)
	VMOVUPS   Y7, 96(DI)
	ADDQ $32, SI
	ADDQ $4, DX
	ADDQ $128, DI
	DECQ CX
	JNZ  wq8loop
	VZEROUPPER
	RET

DATA q8absmask<>+0(SB)/4, $0x7fffffff
GLOBL q8absmask<>(SB), RODATA|NOPTR, $4
DATA q8maxfinite<>+0(SB)/4, $0x7f7fffff
GLOBL q8maxfinite<>(SB), RODATA|NOPTR, $4
DATA q8f127<>+0(SB)/4, $127.0
GLOBL q8f127<>(SB), RODATA|NOPTR, $4
DATA q8f1<>+0(SB)/4, $1.0
GLOBL q8f1<>(SB), RODATA|NOPTR, $4
DATA q8perm<>+0(SB)/4, $0
DATA q8perm<>+4(SB)/4, $4
DATA q8perm<>+8(SB)/4, $1
DATA q8perm<>+12(SB)/4, $5
DATA q8perm<>+16(SB)/4, $2
DATA q8perm<>+20(SB)/4, $6
DATA q8perm<>+24(SB)/4, $3
DATA q8perm<>+28(SB)/4, $7
GLOBL q8perm<>(SB), RODATA|NOPTR, $32

// func quantizeQ8AVX2(q *int8, scales *float32, x *float32, blocks int) bool
// Quantises whole blocks of 32 activations: scale = max|x| / 127, q = x
// times 1/scale (0 where the scale is 0) rounded to nearest, ties to even
// (VCVTPS2DQ under Go's default rounding mode). It reports whether every
// value was finite; when not, q and scales are not to be used.
TEXT ·quantizeQ8AVX2(SB), NOSPLIT, $0-33
	MOVQ q+0(FP), DI
	MOVQ scales+8(FP), DX
	MOVQ x+16(FP), SI
	MOVQ blocks+24(FP), CX
	VBROADCASTSS q8absmask<>(SB), Y15
	VBROADCASTSS q8maxfinite<>(SB), Y14
	VPXOR        Y13, Y13, Y13
	VMOVUPS      q8perm<>(SB), Y12
	VMOVSS       q8f127<>(SB), X11
	VMOVSS       q8f1<>(SB), X10
	VXORPS       X9, X9, X9

qloop:
	VMOVUPS (SI), Y0
	VMOVUPS 32(SI), Y1
	VMOVUPS 64(SI), Y2
	VMOVUPS 96(SI), Y3
	VANDPS  Y15, Y0, Y4
	VANDPS  Y15, Y1, Y5
	VANDPS  Y15, Y2, Y6
	VANDPS  Y15, Y3, Y7
	VPCMPGTD Y14, Y4, Y8
	VPOR     Y8, Y13, Y13
	VPCMPGTD Y14, Y5, Y8
	VPOR     Y8, Y13, Y13
	VPCMPGTD Y14, Y6, Y8
	VPOR     Y8, Y13, Y13
	VPCMPGTD Y14, Y7, Y8
	VPOR     Y8, Y13, Y13
	VMAXPS  Y5, Y4, Y4
	VMAXPS  Y7, Y6, Y6
	VMAXPS  Y6, Y4, Y4
	VEXTRACTF128 $1, Y4, X5
	VMAXPS  X5, X4, X4
	VPERMILPS $0x4e, X4, X5
	VMAXPS  X5, X4, X4
	VPERMILPS $0xb1, X4, X5
	VMAXPS  X5, X4, X4
	// X4 = max|x|; scale = max / 127; inv = 1 / scale, or 0 for a zero scale
	VDIVSS  X11, X4, X4
	VMOVSS  X4, (DX)
	VDIVSS  X4, X10, X5
	VCMPSS  $4, X9, X4, X6
	VANDPS  X6, X5, X5
	VBROADCASTSS X5, Y5
	VMULPS  Y5, Y0, Y0
	VMULPS  Y5, Y1, Y1
	VMULPS  Y5, Y2, Y2
	VMULPS  Y5, Y3, Y3
	VCVTPS2DQ Y0, Y0
	VCVTPS2DQ Y1, Y1
	VCVTPS2DQ Y2, Y2
	VCVTPS2DQ Y3, Y3
	VPACKSSDW Y1, Y0, Y0
	VPACKSSDW Y3, Y2, Y2
	VPACKSSWB Y2, Y0, Y0
	VPERMD    Y0, Y12, Y0
	VMOVDQU   Y0, (DI)
	ADDQ $128, SI
	ADDQ $32, DI
	ADDQ $4, DX
	DECQ CX
	JNZ  qloop

	VPTEST Y13, Y13
	SETEQ  AX
	VZEROUPPER
	MOVB AX, ret+32(FP)
	RET
