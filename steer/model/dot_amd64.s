//go:build amd64 && !purego

#include "textflag.h"

// func dotBF16AVX2(w *uint16, x *float32, n int) float32
// n is a positive multiple of 8.
TEXT ·dotBF16AVX2(SB), NOSPLIT, $0-28
	MOVQ w+0(FP), SI
	MOVQ x+8(FP), DI
	MOVQ n+16(FP), CX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3

bf16loop32:
	CMPQ CX, $32
	JL   bf16loop8
	VPMOVZXWD (SI), Y4
	VPMOVZXWD 16(SI), Y5
	VPMOVZXWD 32(SI), Y6
	VPMOVZXWD 48(SI), Y7
	VPSLLD    $16, Y4, Y4
	VPSLLD    $16, Y5, Y5
	VPSLLD    $16, Y6, Y6
	VPSLLD    $16, Y7, Y7
	VFMADD231PS (DI), Y4, Y0
	VFMADD231PS 32(DI), Y5, Y1
	VFMADD231PS 64(DI), Y6, Y2
	VFMADD231PS 96(DI), Y7, Y3
	ADDQ $64, SI
	ADDQ $128, DI
	SUBQ $32, CX
	JMP  bf16loop32

bf16loop8:
	CMPQ CX, $8
	JL   bf16done
	VPMOVZXWD (SI), Y4
	VPSLLD    $16, Y4, Y4
	VFMADD231PS (DI), Y4, Y0
	ADDQ $16, SI
	ADDQ $32, DI
	SUBQ $8, CX
	JMP  bf16loop8

bf16done:
	VADDPS       Y1, Y0, Y0
	VADDPS       Y3, Y2, Y2
	VADDPS       Y2, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS       X1, X0, X0
	VHADDPS      X0, X0, X0
	VHADDPS      X0, X0, X0
	VZEROUPPER
	MOVSS X0, ret+24(FP)
	RET

// func dotF16AVX2(w *uint16, x *float32, n int) float32
// n is a positive multiple of 8.
TEXT ·dotF16AVX2(SB), NOSPLIT, $0-28
	MOVQ w+0(FP), SI
	MOVQ x+8(FP), DI
	MOVQ n+16(FP), CX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3

f16loop32:
	CMPQ CX, $32
	JL   f16loop8
	VCVTPH2PS (SI), Y4
	VCVTPH2PS 16(SI), Y5
	VCVTPH2PS 32(SI), Y6
	VCVTPH2PS 48(SI), Y7
	VFMADD231PS (DI), Y4, Y0
	VFMADD231PS 32(DI), Y5, Y1
	VFMADD231PS 64(DI), Y6, Y2
	VFMADD231PS 96(DI), Y7, Y3
	ADDQ $64, SI
	ADDQ $128, DI
	SUBQ $32, CX
	JMP  f16loop32

f16loop8:
	CMPQ CX, $8
	JL   f16done
	VCVTPH2PS (SI), Y4
	VFMADD231PS (DI), Y4, Y0
	ADDQ $16, SI
	ADDQ $32, DI
	SUBQ $8, CX
	JMP  f16loop8

f16done:
	VADDPS       Y1, Y0, Y0
	VADDPS       Y3, Y2, Y2
	VADDPS       Y2, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS       X1, X0, X0
	VHADDPS      X0, X0, X0
	VHADDPS      X0, X0, X0
	VZEROUPPER
	MOVSS X0, ret+24(FP)
	RET

// func dotQ8AVX2(q *int8, scales *float32, x *float32, blocks int) float32
// Each block is 32 weights and one scale; blocks is positive. The 32
// products of a block are summed, then multiplied by its scale and added
// to the running sums (two of them, for alternate blocks).
TEXT ·dotQ8AVX2(SB), NOSPLIT, $0-36
	MOVQ q+0(FP), SI
	MOVQ scales+8(FP), DX
	MOVQ x+16(FP), DI
	MOVQ blocks+24(FP), CX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1

q8loop2:
	CMPQ CX, $2
	JL   q8loop1
	VPMOVSXBD (SI), Y4
	VPMOVSXBD 8(SI), Y5
	VPMOVSXBD 16(SI), Y6
	VPMOVSXBD 24(SI), Y7
	VCVTDQ2PS Y4, Y4
	VCVTDQ2PS Y5, Y5
	VCVTDQ2PS Y6, Y6
	VCVTDQ2PS Y7, Y7
	VMULPS      (DI), Y4, Y4
	VFMADD231PS 32(DI), Y5, Y4
	VMULPS      64(DI), Y6, Y6
	VFMADD231PS 96(DI), Y7, Y6
	VADDPS      Y6, Y4, Y4
	VBROADCASTSS (DX), Y8
	VFMADD231PS Y8, Y4, Y0
	VPMOVSXBD 32(SI), Y4
	VPMOVSXBD 40(SI), Y5
	VPMOVSXBD 48(SI), Y6
	VPMOVSXBD 56(SI), Y7
	VCVTDQ2PS Y4, Y4
	VCVTDQ2PS Y5, Y5
	VCVTDQ2PS Y6, Y6
	VCVTDQ2PS Y7, Y7
	VMULPS      128(DI), Y4, Y4
	VFMADD231PS 160(DI), Y5, Y4
	VMULPS      192(DI), Y6, Y6
	VFMADD231PS 224(DI), Y7, Y6
	VADDPS      Y6, Y4, Y4
	VBROADCASTSS 4(DX), Y9
	VFMADD231PS Y9, Y4, Y1
	ADDQ $64, SI
	ADDQ $8, DX
	ADDQ $256, DI
	SUBQ $2, CX
	JMP  q8loop2

q8loop1:
	CMPQ CX, $1
	JL   q8done
	VPMOVSXBD (SI), Y4
	VPMOVSXBD 8(SI), Y5
	VPMOVSXBD 16(SI), Y6
	VPMOVSXBD 24(SI), Y7
	VCVTDQ2PS Y4, Y4
	VCVTDQ2PS Y5, Y5
	VCVTDQ2PS Y6, Y6
	VCVTDQ2PS Y7, Y7
	VMULPS      (DI), Y4, Y4
	VFMADD231PS 32(DI), Y5, Y4
	VMULPS      64(DI), Y6, Y6
	VFMADD231PS 96(DI), Y7, Y6
	VADDPS      Y6, Y4, Y4
	VBROADCASTSS (DX), Y8
	VFMADD231PS Y8, Y4, Y0

q8done:
	VADDPS       Y1, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS       X1, X0, X0
	VHADDPS      X0, X0, X0
	VHADDPS      X0, X0, X0
	VZEROUPPER
	MOVSS X0, ret+32(FP)
	RET

// func cpuid1ECX() uint32
TEXT ·cpuid1ECX(SB), NOSPLIT, $0-4
	MOVL $1, AX
	XORL CX, CX
	CPUID
	MOVL CX, ret+0(FP)
	RET

// func widenBF16AVX2(dst *float32, src *uint16, n int)
// n is a positive multiple of 8.
TEXT ·widenBF16AVX2(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX

wbf16loop:
	VPMOVZXWD (SI), Y0
	VPSLLD    $16, Y0, Y0
	VMOVUPS   Y0, (DI)
	ADDQ $16, SI
	ADDQ $32, DI
	SUBQ $8, CX
	JNZ  wbf16loop
	VZEROUPPER
	RET

// func widenF16AVX2(dst *float32, src *uint16, n int)
// n is a positive multiple of 8.
TEXT ·widenF16AVX2(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX

wf16loop:
	VCVTPH2PS (SI), Y0
	VMOVUPS   Y0, (DI)
	ADDQ $16, SI
	ADDQ $32, DI
	SUBQ $8, CX
	JNZ  wf16loop
	VZEROUPPER
	RET

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

// func dotBF16x4AVX2(w *uint16, x *float32, stride int, n int, out *float32)
// Four dot products at once: w (n values, n a positive multiple of 8)
// with the four vectors x, x+stride, x+2·stride and x+3·stride (stride in
// float32s), into out[0:4]; each weight is widened once for the four.
// Two runs of 8 weights a step, each into its own four sums, so that
// eight multiply-add chains are in flight.
TEXT ·dotBF16x4AVX2(SB), NOSPLIT, $0-40
	MOVQ w+0(FP), SI
	MOVQ x+8(FP), DI
	MOVQ stride+16(FP), R8
	SHLQ $2, R8
	LEAQ (R8)(R8*2), R9
	MOVQ n+24(FP), CX
	MOVQ out+32(FP), DX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7

dotBF16x4AVX2loop16:
	CMPQ CX, $16
	JL   dotBF16x4AVX2loop8
	VPMOVZXWD (SI), Y8
	VPSLLD    $16, Y8, Y8
	VPMOVZXWD 16(SI), Y9
	VPSLLD    $16, Y9, Y9
	VFMADD231PS (DI), Y8, Y0
	VFMADD231PS (DI)(R8*1), Y8, Y1
	VFMADD231PS (DI)(R8*2), Y8, Y2
	VFMADD231PS (DI)(R9*1), Y8, Y3
	VFMADD231PS 32(DI), Y9, Y4
	VFMADD231PS 32(DI)(R8*1), Y9, Y5
	VFMADD231PS 32(DI)(R8*2), Y9, Y6
	VFMADD231PS 32(DI)(R9*1), Y9, Y7
	ADDQ $32, SI
	ADDQ $64, DI
	SUBQ $16, CX
	JMP  dotBF16x4AVX2loop16

dotBF16x4AVX2loop8:
	CMPQ CX, $8
	JL   dotBF16x4AVX2done
	VPMOVZXWD (SI), Y8
	VPSLLD    $16, Y8, Y8
	VFMADD231PS (DI), Y8, Y0
	VFMADD231PS (DI)(R8*1), Y8, Y1
	VFMADD231PS (DI)(R8*2), Y8, Y2
	VFMADD231PS (DI)(R9*1), Y8, Y3

dotBF16x4AVX2done:
	VADDPS Y4, Y0, Y0
	VADDPS Y5, Y1, Y1
	VADDPS Y6, Y2, Y2
	VADDPS Y7, Y3, Y3
	// Sum each accumulator's lanes: out[i] = Σ lanes of Yi.
	VHADDPS      Y1, Y0, Y0
	VHADDPS      Y3, Y2, Y2
	VHADDPS      Y2, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS       X1, X0, X0
	VMOVUPS      X0, (DX)
	VZEROUPPER
	RET

// func dotF16x4AVX2(w *uint16, x *float32, stride int, n int, out *float32)
// Four dot products at once: w (n values, n a positive multiple of 8)
// with the four vectors x, x+stride, x+2·stride and x+3·stride (stride in
// float32s), into out[0:4]; each weight is widened once for the four.
// Two runs of 8 weights a step, each into its own four sums, so that
// eight multiply-add chains are in flight.
TEXT ·dotF16x4AVX2(SB), NOSPLIT, $0-40
	MOVQ w+0(FP), SI
	MOVQ x+8(FP), DI
	MOVQ stride+16(FP), R8
	SHLQ $2, R8
	LEAQ (R8)(R8*2), R9
	MOVQ n+24(FP), CX
	MOVQ out+32(FP), DX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7

dotF16x4AVX2loop16:
	CMPQ CX, $16
	JL   dotF16x4AVX2loop8
	VCVTPH2PS (SI), Y8
	VCVTPH2PS 16(SI), Y9
	VFMADD231PS (DI), Y8, Y0
	VFMADD231PS (DI)(R8*1), Y8, Y1
	VFMADD231PS (DI)(R8*2), Y8, Y2
	VFMADD231PS (DI)(R9*1), Y8, Y3
	VFMADD231PS 32(DI), Y9, Y4
	VFMADD231PS 32(DI)(R8*1), Y9, Y5
	VFMADD231PS 32(DI)(R8*2), Y9, Y6
	VFMADD231PS 32(DI)(R9*1), Y9, Y7
	ADDQ $32, SI
	ADDQ $64, DI
	SUBQ $16, CX
	JMP  dotF16x4AVX2loop16

dotF16x4AVX2loop8:
	CMPQ CX, $8
	JL   dotF16x4AVX2done
	VCVTPH2PS (SI), Y8
	VFMADD231PS (DI), Y8, Y0
	VFMADD231PS (DI)(R8*1), Y8, Y1
	VFMADD231PS (DI)(R8*2), Y8, Y2
	VFMADD231PS (DI)(R9*1), Y8, Y3

dotF16x4AVX2done:
	VADDPS Y4, Y0, Y0
	VADDPS Y5, Y1, Y1
	VADDPS Y6, Y2, Y2
	VADDPS Y7, Y3, Y3
	// Sum each accumulator's lanes: out[i] = Σ lanes of Yi.
	VHADDPS      Y1, Y0, Y0
	VHADDPS      Y3, Y2, Y2
	VHADDPS      Y2, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS       X1, X0, X0
	VMOVUPS      X0, (DX)
	VZEROUPPER
	RET
