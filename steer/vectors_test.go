package steer

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rise-interp/rise/internal/npytest"
	"github.com/rise-interp/rise/steer/model"
)

// TestReadVectorsNpy: a one-dimensional .npy is one vector (it used to be
// refused: "expected two dimensions"), rows are vectors, a single column
// is one vector.
func TestReadVectorsNpy(t *testing.T) {
	for _, tc := range []struct {
		name string
		npy  []byte
		want [][]float32
	}{
		{"1-D float32", npytest.File("<f4", false, "(3,)", npytest.Float32s(1, 2, 3)), [][]float32{{1, 2, 3}}},
		{"1-D float64", npytest.File("<f8", false, "(3,)", npytest.Float64s(1, 2, 3)), [][]float32{{1, 2, 3}}},
		{"one row", npytest.File("<f4", false, "(1, 3)", npytest.Float32s(1, 2, 3)), [][]float32{{1, 2, 3}}},
		{"rows", npytest.File("<f4", false, "(2, 3)", npytest.Float32s(1, 2, 3, 4, 5, 6)), [][]float32{{1, 2, 3}, {4, 5, 6}}},
		{"rows, Fortran order", npytest.File("<f4", true, "(2, 3)", npytest.Float32s(1, 4, 2, 5, 3, 6)), [][]float32{{1, 2, 3}, {4, 5, 6}}},
		{"a column", npytest.File("<f4", false, "(3, 1)", npytest.Float32s(1, 2, 3)), [][]float32{{1, 2, 3}}},
		{"one value", npytest.File("<f4", false, "(1, 1)", npytest.Float32s(7)), [][]float32{{7}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ReadVectorsNpy(bytes.NewReader(tc.npy), int64(len(tc.npy)), "v.npy")
			if err != nil {
				t.Fatal(err)
			}
			if !slices.EqualFunc(got, tc.want, slices.Equal) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
	for _, tc := range []struct {
		name string
		npy  []byte
		want string
	}{
		{"empty", npytest.File("<f4", false, "(0,)", nil), "at least one vector"},
		{"no rows", npytest.File("<f4", false, "(0, 3)", nil), "at least one vector"},
		{"3-D", npytest.File("<f4", false, "(1, 1, 2)", npytest.Float32s(1, 2)), "one or two dimensions"},
		{"NaN", npytest.File("<f4", false, "(2, 2)", npytest.Float32s(1, 2, 3, float32(math.NaN()))), "value 1 of vector 1 is NaN"},
		{"integers", npytest.File("<i4", false, "(2,)", npytest.Float32s(1, 2)), "dtype"},
		{"truncated", npytest.File("<f4", false, "(4,)", npytest.Float32s(1, 2)), "truncated"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadVectorsNpy(bytes.NewReader(tc.npy), int64(len(tc.npy)), "up.npy")
			if err == nil || !strings.HasPrefix(err.Error(), "up.npy: ") || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("error %v: want one line starting with the name and mentioning %q", err, tc.want)
			}
		})
	}
}

// TestLoadDirectionNpy: npy: sources take a 1-D vector, a row of a matrix
// by number (npy:PATH#ROW), and refuse a matrix without one.
func TestLoadDirectionNpy(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	one := write("one.npy", npytest.File("<f4", false, "(2,)", npytest.Float32s(3, 4)))
	rows := write("rows.npy", npytest.File("<f4", false, "(2, 2)", npytest.Float32s(3, 4, 0, 2)))
	for src, want := range map[string][]float32{
		"npy:" + one:         {0.6, 0.8},
		"npy:" + rows + "#0": {0.6, 0.8},
		"npy:" + rows + "#1": {0, 1},
	} {
		got, err := LoadDirection(src)
		if err != nil {
			t.Errorf("%s: %v", src, err)
			continue
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: %v, want %v", src, got, want)
		}
	}
	for src, want := range map[string]string{
		"npy:" + rows:        "found 2 rows: pick one with npy:" + rows + "#ROW",
		"npy:" + rows + "#2": "row 2: expected 0 to 1",
		"npy:" + one + "#1":  "row 1: expected 0 to 0",
	} {
		if _, err := LoadDirection(src); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error mentioning %q", src, err, want)
		}
	}
	// A spec with a relative npy:PATH#ROW source resolves it beside itself.
	spec := write("spec.json", []byte(`{"vectors": [{"source": "npy:rows.npy#1", "layer": 0, "strength": 2}]}`))
	s, err := ReadSpec(spec)
	if err != nil {
		t.Fatal(err)
	}
	vs, err := s.Resolve(2, 1)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(vs[0].Dir, []float32{0, 1}) {
		t.Errorf("resolved %v", vs[0].Dir)
	}
}

// TestSteeringOverflow: a strength too large for float32 is refused up
// front, and a generation whose residual stream a vector pushed out of
// range (the web builds vectors without Check) fails with an error naming
// the vector; it used to return empty text and succeed.
func TestSteeringOverflow(t *testing.T) {
	m, tok := loadStories(t)
	dir := t.TempDir()
	v := make([]float32, m.Dim)
	v[0] = 1
	npy := filepath.Join(dir, "v.npy")
	if err := os.WriteFile(npy, npytest.File("<f4", false, fmt.Sprintf("(%d,)", m.Dim), npytest.Float32s(v...)), 0o644); err != nil {
		t.Fatal(err)
	}
	spec := filepath.Join(dir, "spec.json")
	os.WriteFile(spec, []byte(`{"vectors": [{"source": "npy:v.npy", "layer": 2, "strength": 1e308}]}`), 0o644)
	s, err := ReadSpec(spec)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Resolve(m.Dim, m.Layers); err == nil || !strings.Contains(err.Error(), "strength") || !strings.Contains(err.Error(), "1e+308") {
		t.Errorf("strength 1e308: %v", err)
	}
	s.Vectors[0].Strength = 1e6
	vs, err := s.Resolve(m.Dim, m.Layers)
	if err != nil {
		t.Fatalf("strength 1e6: %v", err)
	}
	vs[0].Strength = 1e30
	_, err = model.Generate(context.Background(), m, tok, []string{"Once"}, model.GenerateOptions{MaxTokens: 5, Hooks: Vectors(vs)})
	if err == nil {
		t.Fatal("a strength of 1e30 generated text")
	}
	msg := err.Error()
	for _, want := range []string{"float32's range", "steering vector 0 (npy:" + npy + ": add, strength 1e+30, layer 2, positions all)"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not mention %q", msg, want)
		}
	}
}
