package vec

import (
	"math"
	"testing"
)

func TestUnit(t *testing.T) {
	u, err := Unit([]float32{3, 4})
	if err != nil || u[0] != 0.6 || u[1] != 0.8 {
		t.Fatalf("Unit(3, 4) = %v, %v; want [0.6 0.8]", u, err)
	}
	for _, bad := range [][]float32{{0, 0}, {float32(math.NaN()), 1}, {float32(math.Inf(1))}} {
		if _, err := Unit(bad); err == nil {
			t.Errorf("Unit(%v): expected an error", bad)
		}
	}
}

func TestScale64(t *testing.T) {
	v, ok := Scale64([]float64{3, 4}, 10)
	if !ok || v[0] != 6 || v[1] != 8 {
		t.Fatalf("Scale64 = %v, %v; want [6 8]", v, ok)
	}
	if _, ok := Scale64([]float64{0, 0}, 1); ok {
		t.Fatal("a zero vector has no direction")
	}
}

func TestUnitRowsAndCosine(t *testing.T) {
	w := []float32{3, 4, 0, 0, 0, -2}
	u := UnitRows(w, 3, 2)
	want := []float32{0.6, 0.8, 0, 0, 0, -1}
	for i := range want {
		if u[i] != want[i] {
			t.Fatalf("UnitRows = %v, want %v", u, want)
		}
	}
	if c := Cosine([]float32{1, 0}, []float32{1, 1}); math.Abs(c-1/math.Sqrt2) > 1e-12 {
		t.Fatalf("Cosine = %v", c)
	}
	if c := Cosine([]float32{0, 0}, []float32{1, 1}); c != 0 {
		t.Fatalf("Cosine with zero = %v", c)
	}
}
