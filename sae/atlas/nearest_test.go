package atlas

import (
	"math"
	"testing"
)

func TestNearestFeatures(t *testing.T) {
	// Rows at angles 0°, 10°, 90°, 170°, 30° in a plane (with extra zero dims).
	angles := []float64{0, 10, 90, 170, 30}
	d := 3
	w := make([]float32, len(angles)*d)
	for i, a := range angles {
		r := a * math.Pi / 180
		w[i*d], w[i*d+1] = float32(2*math.Cos(r)), float32(2*math.Sin(r))
	}
	got, err := NearestFeatures(w, len(angles), d, 0, 3)
	if err != nil {
		t.Fatal(err)
	}
	want := []int{1, 4, 2}
	for i, nb := range got {
		if nb.ID != want[i] {
			t.Fatalf("neighbours %+v, want ids %v", got, want)
		}
	}
	if math.Abs(got[0].Cos-math.Cos(10*math.Pi/180)) > 1e-6 {
		t.Errorf("cos with the 10° row is %v", got[0].Cos)
	}
	if _, err := NearestFeatures(w, len(angles), d, 9, 3); err == nil {
		t.Error("a feature outside the SAE was accepted")
	}
}
