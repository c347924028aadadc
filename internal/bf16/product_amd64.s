//go:build amd64 && !purego

#include "textflag.h"

// The bfloat16 tile kernel of GemmBF16. Go's assembler has no mnemonic for
// VDPBF16PS (AVX512_BF16), so each one is spelled out in bytes below; the
// bytes are GNU as's encoding of the instruction in the comment beside it.
// VDPBF16PS acc, b, a adds, in each float32 lane i of acc,
// b.bf16[2i+1]·a.bf16[2i+1] and then b.bf16[2i]·a.bf16[2i].
//
// Registers: Z0-Z23 hold the 6 x 64 tile of C (row r, columns 16j..16j+15
// in Z(4r+j)); Z24-Z27 the panel's 64 columns of one pair of k; Z28 and Z29
// a pair of k of one row of A, broadcast.

// DP0: row 0 of the tile: VDPBF16PS Z0, Z24, Z28; VDPBF16PS Z1, Z25, Z28; VDPBF16PS Z2, Z26, Z28; VDPBF16PS Z3, Z27, Z28
#define DP0 BYTE $0x62; BYTE $0x92; BYTE $0x3e; BYTE $0x40; BYTE $0x52; BYTE $0xc4; BYTE $0x62; BYTE $0x92; BYTE $0x36; BYTE $0x40; BYTE $0x52; BYTE $0xcc; BYTE $0x62; BYTE $0x92; BYTE $0x2e; BYTE $0x40; BYTE $0x52; BYTE $0xd4; BYTE $0x62; BYTE $0x92; BYTE $0x26; BYTE $0x40; BYTE $0x52; BYTE $0xdc

// DP1: row 1 of the tile: VDPBF16PS Z4, Z24, Z29; VDPBF16PS Z5, Z25, Z29; VDPBF16PS Z6, Z26, Z29; VDPBF16PS Z7, Z27, Z29
#define DP1 BYTE $0x62; BYTE $0x92; BYTE $0x3e; BYTE $0x40; BYTE $0x52; BYTE $0xe5; BYTE $0x62; BYTE $0x92; BYTE $0x36; BYTE $0x40; BYTE $0x52; BYTE $0xed; BYTE $0x62; BYTE $0x92; BYTE $0x2e; BYTE $0x40; BYTE $0x52; BYTE $0xf5; BYTE $0x62; BYTE $0x92; BYTE $0x26; BYTE $0x40; BYTE $0x52; BYTE $0xfd

// DP2: row 2 of the tile: VDPBF16PS Z8, Z24, Z28; VDPBF16PS Z9, Z25, Z28; VDPBF16PS Z10, Z26, Z28; VDPBF16PS Z11, Z27, Z28
#define DP2 BYTE $0x62; BYTE $0x12; BYTE $0x3e; BYTE $0x40; BYTE $0x52; BYTE $0xc4; BYTE $0x62; BYTE $0x12; BYTE $0x36; BYTE $0x40; BYTE $0x52; BYTE $0xcc; BYTE $0x62; BYTE $0x12; BYTE $0x2e; BYTE $0x40; BYTE $0x52; BYTE $0xd4; BYTE $0x62; BYTE $0x12; BYTE $0x26; BYTE $0x40; BYTE $0x52; BYTE $0xdc

// DP3: row 3 of the tile: VDPBF16PS Z12, Z24, Z29; VDPBF16PS Z13, Z25, Z29; VDPBF16PS Z14, Z26, Z29; VDPBF16PS Z15, Z27, Z29
#define DP3 BYTE $0x62; BYTE $0x12; BYTE $0x3e; BYTE $0x40; BYTE $0x52; BYTE $0xe5; BYTE $0x62; BYTE $0x12; BYTE $0x36; BYTE $0x40; BYTE $0x52; BYTE $0xed; BYTE $0x62; BYTE $0x12; BYTE $0x2e; BYTE $0x40; BYTE $0x52; BYTE $0xf5; BYTE $0x62; BYTE $0x12; BYTE $0x26; BYTE $0x40; BYTE $0x52; BYTE $0xfd

// DP4: row 4 of the tile: VDPBF16PS Z16, Z24, Z28; VDPBF16PS Z17, Z25, Z28; VDPBF16PS Z18, Z26, Z28; VDPBF16PS Z19, Z27, Z28
#define DP4 BYTE $0x62; BYTE $0x82; BYTE $0x3e; BYTE $0x40; BYTE $0x52; BYTE $0xc4; BYTE $0x62; BYTE $0x82; BYTE $0x36; BYTE $0x40; BYTE $0x52; BYTE $0xcc; BYTE $0x62; BYTE $0x82; BYTE $0x2e; BYTE $0x40; BYTE $0x52; BYTE $0xd4; BYTE $0x62; BYTE $0x82; BYTE $0x26; BYTE $0x40; BYTE $0x52; BYTE $0xdc

// DP5: row 5 of the tile: VDPBF16PS Z20, Z24, Z29; VDPBF16PS Z21, Z25, Z29; VDPBF16PS Z22, Z26, Z29; VDPBF16PS Z23, Z27, Z29
#define DP5 BYTE $0x62; BYTE $0x82; BYTE $0x3e; BYTE $0x40; BYTE $0x52; BYTE $0xe5; BYTE $0x62; BYTE $0x82; BYTE $0x36; BYTE $0x40; BYTE $0x52; BYTE $0xed; BYTE $0x62; BYTE $0x82; BYTE $0x2e; BYTE $0x40; BYTE $0x52; BYTE $0xf5; BYTE $0x62; BYTE $0x82; BYTE $0x26; BYTE $0x40; BYTE $0x52; BYTE $0xfd

// ADDROW adds one row of the tile (four registers) to the row of C at DX
// and moves DX to the next row.
#define ADDROW(z0, z1, z2, z3) \
	VADDPS 0(DX), z0, z0; VMOVUPS z0, 0(DX); \
	VADDPS 64(DX), z1, z1; VMOVUPS z1, 64(DX); \
	VADDPS 128(DX), z2, z2; VMOVUPS z2, 128(DX); \
	VADDPS 192(DX), z3, z3; VMOVUPS z3, 192(DX); \
	ADDQ R9, DX

// func tile6x64(a *uint16, lda uintptr, b *uint16, kp int, c *float32, ldc uintptr)
//
// C[0:6, 0:64] += A[0:6, 0:2kp] · B, where A's rows are lda bytes apart and
// hold bfloat16, B is one packed panel (kp runs of 64 columns x 2 rows of
// k, see packBF16) and C's rows are ldc bytes apart. The tile's sums start
// at zero and are added to C at the end.
TEXT ·tile6x64(SB), NOSPLIT, $0-48
	MOVQ a+0(FP), SI
	MOVQ lda+8(FP), R8
	MOVQ b+16(FP), DI
	MOVQ kp+24(FP), CX
	MOVQ c+32(FP), DX
	MOVQ ldc+40(FP), R9
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	VPXORD Z4, Z4, Z4
	VPXORD Z5, Z5, Z5
	VPXORD Z6, Z6, Z6
	VPXORD Z7, Z7, Z7
	VPXORD Z8, Z8, Z8
	VPXORD Z9, Z9, Z9
	VPXORD Z10, Z10, Z10
	VPXORD Z11, Z11, Z11
	VPXORD Z12, Z12, Z12
	VPXORD Z13, Z13, Z13
	VPXORD Z14, Z14, Z14
	VPXORD Z15, Z15, Z15
	VPXORD Z16, Z16, Z16
	VPXORD Z17, Z17, Z17
	VPXORD Z18, Z18, Z18
	VPXORD Z19, Z19, Z19
	VPXORD Z20, Z20, Z20
	VPXORD Z21, Z21, Z21
	VPXORD Z22, Z22, Z22
	VPXORD Z23, Z23, Z23
	LEAQ (SI)(R8*2), R10
	ADDQ R8, R10 // row 3
	TESTQ CX, CX
	JEQ store

loop:
	VMOVDQU32 0(DI), Z24
	VMOVDQU32 64(DI), Z25
	VMOVDQU32 128(DI), Z26
	VMOVDQU32 192(DI), Z27
	VPBROADCASTD (SI), Z28
	VPBROADCASTD (SI)(R8*1), Z29
	DP0
	DP1
	VPBROADCASTD (SI)(R8*2), Z28
	VPBROADCASTD (R10), Z29
	DP2
	DP3
	VPBROADCASTD (SI)(R8*4), Z28
	VPBROADCASTD (R10)(R8*2), Z29
	DP4
	DP5
	ADDQ $4, SI
	ADDQ $4, R10
	ADDQ $256, DI
	DECQ CX
	JNE  loop

store:
	ADDROW(Z0, Z1, Z2, Z3)
	ADDROW(Z4, Z5, Z6, Z7)
	ADDROW(Z8, Z9, Z10, Z11)
	ADDROW(Z12, Z13, Z14, Z15)
	ADDROW(Z16, Z17, Z18, Z19)
	ADDROW(Z20, Z21, Z22, Z23)
	VZEROUPPER
	RET

// func roundAVX512(dst *uint16, src *float32, n int)
//
// dst[i] = src[i] rounded to bfloat16, to nearest with ties to even, for n
// a multiple of 16, by VCVTNEPS2BF16 (AVX512_BF16), spelled out in bytes as
// VDPBF16PS is above.
TEXT ·roundAVX512(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	SHRQ $5, CX // runs of 32
	JEQ  tail16

round32:
	VMOVUPS 0(SI), Z0
	VMOVUPS 64(SI), Z2
	// VCVTNEPS2BF16 Y1, Z0; VCVTNEPS2BF16 Y3, Z2
	BYTE $0x62; BYTE $0xf2; BYTE $0x7e; BYTE $0x48; BYTE $0x72; BYTE $0xc8
	BYTE $0x62; BYTE $0xf2; BYTE $0x7e; BYTE $0x48; BYTE $0x72; BYTE $0xda
	VMOVDQU Y1, 0(DI)
	VMOVDQU Y3, 32(DI)
	ADDQ $128, SI
	ADDQ $64, DI
	DECQ CX
	JNE  round32

tail16:
	MOVQ n+16(FP), CX
	ANDQ $16, CX
	JEQ  done
	VMOVUPS 0(SI), Z0
	// VCVTNEPS2BF16 Y1, Z0
	BYTE $0x62; BYTE $0xf2; BYTE $0x7e; BYTE $0x48; BYTE $0x72; BYTE $0xc8
	VMOVDQU Y1, 0(DI)

done:
	VZEROUPPER
	RET
