package steer

import (
	"math"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/rise-interp/rise/sae/atlas"
)

// The exact sign-flip test against values worked by hand: five equal
// positive differences are as extreme as a flip gets only when all signs
// agree, 2 of 2^5 patterns; no differences at all give p = 1.
func TestPairedPValueExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, c := range []struct {
		a, b []float64
		want float64
	}{
		{[]float64{2, 2, 2, 2, 2}, []float64{1, 1, 1, 1, 1}, 2.0 / 32},
		{[]float64{1, 2, 3}, []float64{1, 2, 3}, 1},
		// Differences 2, 1, 1, 0: the zero is dropped; |±2 ±1 ±1| reaches
		// the observed 4 in 2 of the 8 patterns.
		{[]float64{3, 1, 1, 5}, []float64{1, 0, 0, 5}, 2.0 / 8},
		// Differences 1, 1, -1: every pattern reaches |sum| = 1.
		{[]float64{1, 1, 0}, []float64{0, 0, 1}, 1},
	} {
		if got := pairedPValue(c.a, c.b, rng); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("pairedPValue(%v, %v) = %v, want %v", c.a, c.b, got, c.want)
		}
	}
	// Sampled (more than 16 differences): a clear shift is significant,
	// noise around zero is not, and p is never 0.
	shift, noise, zero := make([]float64, 40), make([]float64, 40), make([]float64, 40)
	for i := range shift {
		shift[i] = 1 + 0.1*float64(i%3)
		noise[i] = float64(i%2*2 - 1)
	}
	if p := pairedPValue(shift, zero, rng); p > 0.001 || p <= 0 {
		t.Errorf("a shift of 1 on 40 prompts: p = %v, want (0, 0.001]", p)
	}
	if p := pairedPValue(noise, zero, rng); p < 0.5 {
		t.Errorf("alternating ±1: p = %v, want large", p)
	}
}

// The bootstrap interval of a large normal sample matches the normal
// theory interval mean ± 1.96·s/√n (Efron & Tibshirani, ch. 13), and a
// constant sample has no width.
func TestBootstrapInterval(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	x := make([]float64, 400)
	for i := range x {
		x[i] = 5 + 2*rng.NormFloat64()
	}
	m := mean(x)
	var ss float64
	for _, v := range x {
		ss += (v - m) * (v - m)
	}
	half := 1.96 * math.Sqrt(ss/float64(len(x)-1)) / math.Sqrt(float64(len(x)))
	iv := bootstrap(x, rand.New(rand.NewPCG(5, 6)))
	if iv.Mean != m || math.Abs((iv.Hi-iv.Lo)/2-half) > 0.1*half || math.Abs((iv.Hi+iv.Lo)/2-m) > 0.1*half {
		t.Errorf("bootstrap %+v, normal theory %v ± %v", iv, m, half)
	}
	if c := bootstrap([]float64{3, 3, 3}, rng); c.Lo != 3 || c.Hi != 3 {
		t.Errorf("a constant sample: %+v", c)
	}
	again := bootstrap(x, rand.New(rand.NewPCG(5, 6)))
	if again != iv {
		t.Errorf("the same seed gave %+v and %+v", iv, again)
	}
}

// Random controls keep everything but the direction, which is a unit
// vector of its own per control, and the same seed gives the same ones.
func TestRandomControls(t *testing.T) {
	dir := make([]float32, 16)
	dir[0] = 1
	vs := []Vector{{VectorSpec: VectorSpec{Layer: 2, Op: OpAdd, Strength: 3, Positions: PosStepBoundary}, Dir: dir}}
	cs := RandomControls(vs, 3, 7)
	if len(cs) != 3 {
		t.Fatalf("%d controls", len(cs))
	}
	for i, c := range cs {
		v := c.Vectors[0]
		if !reflect.DeepEqual(v.VectorSpec, vs[0].VectorSpec) {
			t.Errorf("control %d changed the spec: %+v", i, v.VectorSpec)
		}
		var n float64
		for _, x := range v.Dir {
			n += float64(x) * float64(x)
		}
		if math.Abs(n-1) > 1e-5 || v.Dir[0] == 1 {
			t.Errorf("control %d: norm² %v, direction %v", i, n, v.Dir[:3])
		}
		if i > 0 && c.Vectors[0].Dir[0] == cs[i-1].Vectors[0].Dir[0] {
			t.Errorf("controls %d and %d share a direction", i-1, i)
		}
	}
	if again := RandomControls(vs, 3, 7); again[2].Vectors[0].Dir[5] != cs[2].Vectors[0].Dir[5] {
		t.Error("the same seed gave other controls")
	}
}

// TestShuffledControl: an atlas vector's control is its atlas's
// shuffled-label vector at unit length, with the vector's spec; a vector
// from elsewhere has none, and the error says why.
func TestShuffledControl(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "atlas.json")
	a := &atlas.Atlas{Format: atlas.AtlasFormat, Behaviours: map[string]atlas.BehaviourInfo{
		"reflection": {Vector: []float32{1, 0, 0}, ShuffledVector: []float32{0, 3, 4}},
	}}
	if err := a.Save(path); err != nil {
		t.Fatal(err)
	}
	spec := VectorSpec{Source: "atlas:" + path + "#reflection", Layer: 1, Op: OpAdd, Strength: 4, Positions: PosStepBoundary}
	c, err := ShuffledControl([]Vector{{VectorSpec: spec, Dir: []float32{1, 0, 0}}})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Vectors[0]; !reflect.DeepEqual(got.VectorSpec, spec) || got.Dir[0] != 0 || got.Dir[1] != 0.6 || got.Dir[2] != 0.8 {
		t.Errorf("shuffled control %+v", got)
	}
	if _, err := ShuffledControl([]Vector{{VectorSpec: VectorSpec{Source: "npy:v.npy"}, Dir: []float32{1, 0, 0}}}); err == nil || !strings.Contains(err.Error(), "atlas") {
		t.Errorf("an npy vector's shuffled control: %v", err)
	}
}
