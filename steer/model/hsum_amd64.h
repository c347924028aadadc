// HSUM8 adds up each of the eight 8-lane sums y0..y7 and stores the eight
// totals at off(DX) (x0, x1, x4 and x5 are the X halves of y0, y1, y4 and
// y5). Shared by dot_amd64.s and dot_avx512_amd64.s.
#define HSUM8(y0, y1, y2, y3, y4, y5, y6, y7, x0, x1, x4, x5, off) \
	VHADDPS      y1, y0, y0 \
	VHADDPS      y3, y2, y2 \
	VHADDPS      y2, y0, y0 \
	VHADDPS      y5, y4, y4 \
	VHADDPS      y7, y6, y6 \
	VHADDPS      y6, y4, y4 \
	VEXTRACTF128 $1, y0, x1 \
	VADDPS       x1, x0, x0 \
	VEXTRACTF128 $1, y4, x5 \
	VADDPS       x5, x4, x4 \
	VMOVUPS      x0, off(DX) \
	VMOVUPS      x4, off+16(DX)
