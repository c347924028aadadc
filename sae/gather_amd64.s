//go:build amd64 && !purego

#include "textflag.h"

// GATHERPTRS loads a gathered kernel's arguments (dense, base *float32,
// stride int, idx *int32, e *float32, n int): dense in DI, base in SI, the
// stride in bytes in DX, idx in BX, e in R8, n in CX.
#define GATHERPTRS \
	MOVQ dense+0(FP), DI \
	MOVQ base+8(FP), SI \
	MOVQ stride+16(FP), DX \
	SHLQ $2, DX \
	MOVQ idx+24(FP), BX \
	MOVQ e+32(FP), R8 \
	MOVQ n+40(FP), CX

// GATHERARGS loads the arguments (GATHERPTRS), then the 64 values at DI
// into Y0-Y7. GATHERSTORE writes Y0-Y7 back to them.
#define GATHERARGS \
	GATHERPTRS \
	VMOVUPS 0(DI), Y0 \
	VMOVUPS 32(DI), Y1 \
	VMOVUPS 64(DI), Y2 \
	VMOVUPS 96(DI), Y3 \
	VMOVUPS 128(DI), Y4 \
	VMOVUPS 160(DI), Y5 \
	VMOVUPS 192(DI), Y6 \
	VMOVUPS 224(DI), Y7

// GATHERARGS512 loads the arguments (GATHERPTRS), then the 64 values at
// DI into Z0-Z3.
#define GATHERARGS512 \
	GATHERPTRS \
	VMOVUPS 0(DI), Z0 \
	VMOVUPS 64(DI), Z1 \
	VMOVUPS 128(DI), Z2 \
	VMOVUPS 192(DI), Z3

#define GATHERSTORE \
	VMOVUPS Y0, 0(DI) \
	VMOVUPS Y1, 32(DI) \
	VMOVUPS Y2, 64(DI) \
	VMOVUPS Y3, 96(DI) \
	VMOVUPS Y4, 128(DI) \
	VMOVUPS Y5, 160(DI) \
	VMOVUPS Y6, 192(DI) \
	VMOVUPS Y7, 224(DI)

// GATHERROW points AX at the row the entry at (BX) names.
#define GATHERROW \
	MOVLQSX (BX), AX \
	IMULQ   DX, AX \
	ADDQ    SI, AX

// NEXTENTRY moves to the next entry, counting CX down.
#define NEXTENTRY \
	ADDQ $4, BX \
	ADDQ $4, R8 \
	DECQ CX

// DOTNEXT adds the eight lanes of Y8 to the entry's sum at (R8) and moves
// to the next entry, counting CX down.
#define DOTNEXT \
	VEXTRACTF128 $1, Y8, X9 \
	VADDPS       X9, X8, X8 \
	VHADDPS      X8, X8, X8 \
	VHADDPS      X8, X8, X8 \
	VADDSS       (R8), X8, X8 \
	VMOVSS       X8, (R8) \
	NEXTENTRY

// func gatherAxpy64AVX2(dense, base *float32, stride int, idx *int32, e *float32, n int)
// dense[0:64] += Σ_{k<n} e[k]·base[idx[k]·stride : idx[k]·stride+64], the 64
// sums held in registers throughout.
TEXT ·gatherAxpy64AVX2(SB), NOSPLIT, $0-48
	GATHERARGS
	TESTQ CX, CX
	JE    axpydone

axpyloop:
	GATHERROW
	VBROADCASTSS (R8), Y8
	VFMADD231PS  0(AX), Y8, Y0
	VFMADD231PS  32(AX), Y8, Y1
	VFMADD231PS  64(AX), Y8, Y2
	VFMADD231PS  96(AX), Y8, Y3
	VFMADD231PS  128(AX), Y8, Y4
	VFMADD231PS  160(AX), Y8, Y5
	VFMADD231PS  192(AX), Y8, Y6
	VFMADD231PS  224(AX), Y8, Y7
	NEXTENTRY
	JNE          axpyloop

axpydone:
	GATHERSTORE
	VZEROUPPER
	RET

// func gatherDot64AVX2(dense, base *float32, stride int, idx *int32, e *float32, n int)
// e[k] += dense[0:64] · base[idx[k]·stride : idx[k]·stride+64] for k < n, dense
// held in registers throughout.
TEXT ·gatherDot64AVX2(SB), NOSPLIT, $0-48
	GATHERARGS
	TESTQ CX, CX
	JE    dotdone

dotloop:
	GATHERROW
	VMULPS       0(AX), Y0, Y8
	VMULPS       32(AX), Y1, Y9
	VFMADD231PS  64(AX), Y2, Y8
	VFMADD231PS  96(AX), Y3, Y9
	VFMADD231PS  128(AX), Y4, Y8
	VFMADD231PS  160(AX), Y5, Y9
	VFMADD231PS  192(AX), Y6, Y8
	VFMADD231PS  224(AX), Y7, Y9
	VADDPS       Y9, Y8, Y8
	DOTNEXT
	JNE          dotloop

dotdone:
	VZEROUPPER
	RET

// func adamAVX2(p, grad, m, v *float32, n int, c *adamConsts)
// The Adam update of adam.step for n values (a positive multiple of 8),
// eight at a time, with the same operations in the same order as the Go
// loop (no fused multiply-adds; square root and division correctly
// rounded), so the result is the same to the bit:
//	m = b1·m + (1−b1)·g;  v = b2·v + ((1−b2)·g)·g;  p −= (step·m) / (√v·sc2 + eps)
TEXT ·adamAVX2(SB), NOSPLIT, $0-48
	MOVQ p+0(FP), DI
	MOVQ grad+8(FP), SI
	MOVQ m+16(FP), R8
	MOVQ v+24(FP), R9
	MOVQ n+32(FP), CX
	MOVQ c+40(FP), AX
	VBROADCASTSS 0(AX), Y8   // b1
	VBROADCASTSS 4(AX), Y9   // 1 − b1
	VBROADCASTSS 8(AX), Y10  // b2
	VBROADCASTSS 12(AX), Y11 // 1 − b2
	VBROADCASTSS 16(AX), Y12 // step
	VBROADCASTSS 20(AX), Y13 // sc2
	VBROADCASTSS 24(AX), Y14 // eps

adamloop:
	VMOVUPS (SI), Y0
	VMOVUPS (R8), Y1
	VMULPS  Y8, Y1, Y1
	VMULPS  Y9, Y0, Y2
	VADDPS  Y2, Y1, Y1
	VMOVUPS Y1, (R8)
	VMOVUPS (R9), Y3
	VMULPS  Y10, Y3, Y3
	VMULPS  Y11, Y0, Y4
	VMULPS  Y0, Y4, Y4
	VADDPS  Y4, Y3, Y3
	VMOVUPS Y3, (R9)
	VSQRTPS Y3, Y5
	VMULPS  Y13, Y5, Y5
	VADDPS  Y14, Y5, Y5
	VMULPS  Y12, Y1, Y6
	VDIVPS  Y5, Y6, Y6
	VMOVUPS (DI), Y7
	VSUBPS  Y6, Y7, Y7
	VMOVUPS Y7, (DI)
	ADDQ $32, DI
	ADDQ $32, SI
	ADDQ $32, R8
	ADDQ $32, R9
	SUBQ $8, CX
	JNZ  adamloop
	VZEROUPPER
	RET

// func gatherAxpy64AVX512(dense, base *float32, stride int, idx *int32, e *float32, n int)
// gatherAxpy64AVX2 in 512-bit registers: half the instructions, and each
// of the 64 sums takes the terms in the same order (the same bits).
TEXT ·gatherAxpy64AVX512(SB), NOSPLIT, $0-48
	GATHERARGS512
	TESTQ CX, CX
	JE    axpy5done

axpy5loop:
	GATHERROW
	VBROADCASTSS (R8), Z8
	VFMADD231PS  0(AX), Z8, Z0
	VFMADD231PS  64(AX), Z8, Z1
	VFMADD231PS  128(AX), Z8, Z2
	VFMADD231PS  192(AX), Z8, Z3
	NEXTENTRY
	JNE          axpy5loop

axpy5done:
	VMOVUPS Z0, 0(DI)
	VMOVUPS Z1, 64(DI)
	VMOVUPS Z2, 128(DI)
	VMOVUPS Z3, 192(DI)
	VZEROUPPER
	RET


// func gatherDot64AVX512(dense, base *float32, stride int, idx *int32, e *float32, n int)
// gatherDot64AVX2 in 512-bit registers. The partial sums are combined in
// another order than the AVX2 kernel's, so the last bits may differ.
TEXT ·gatherDot64AVX512(SB), NOSPLIT, $0-48
	GATHERARGS512
	TESTQ CX, CX
	JE    dot5done

dot5loop:
	GATHERROW
	VMULPS         0(AX), Z0, Z8
	VMULPS         64(AX), Z1, Z9
	VFMADD231PS    128(AX), Z2, Z8
	VFMADD231PS    192(AX), Z3, Z9
	VADDPS         Z9, Z8, Z8
	VEXTRACTF32X8  $1, Z8, Y9
	VADDPS         Y9, Y8, Y8
	DOTNEXT
	JNE            dot5loop

dot5done:
	VZEROUPPER
	RET
