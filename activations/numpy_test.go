package activations

import (
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// python returns a Python interpreter with numpy, or skips the test. CI
// installs Debian's python3-numpy, so there the test always runs.
func python(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/usr/bin/python3", "python3"} {
		if exec.Command(p, "-c", "import numpy").Run() == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("numpy is not installed; .ci/run installs python3-numpy")
	}
	t.Skip("numpy is not installed")
	return ""
}

// TestNumpyInterop checks the format against numpy itself: files numpy
// writes (float32, float16 with subnormals, big-endian, format 2.0 headers,
// np.savez and np.savez_compressed) read back to numpy's values, and the
// shards rise writes load in numpy.
func TestNumpyInterop(t *testing.T) {
	py := python(t)
	dir := t.TempDir()
	script := `
import numpy as np, sys, os
d = sys.argv[1]
x = (np.arange(24, dtype=np.float64).reshape(6, 4) - 10) / 7
np.save(os.path.join(d, "f4.npy"), x.astype(np.float32))
h = np.array([[6e-8, -6.1e-5, 65504, 0.1], [1, 2, 3, 4.5]], dtype=np.float16)
np.save(os.path.join(d, "f2.npy"), h)
np.save(os.path.join(d, "be.npy"), x.astype(">f4"))
with open(os.path.join(d, "v2.npy"), "wb") as f:
    np.lib.format.write_array(f, x.astype(np.float32), version=(2, 0))
with open(os.path.join(d, "v3.npy"), "wb") as f:
    np.lib.format.write_array(f, x.astype(np.float32), version=(3, 0))
np.savez(os.path.join(d, "s.npz"), layer3=x.astype(np.float32), layer9=x.astype(np.float16))
np.savez_compressed(os.path.join(d, "c.npz"), layer3=x.astype(np.float32))
np.savetxt(os.path.join(d, "f2.txt"), h.astype(np.float32).reshape(-1), fmt="%.9g")
np.savetxt(os.path.join(d, "x.txt"), x.astype(np.float32).reshape(-1), fmt="%.9g")
`
	if out, err := exec.Command(py, "-c", script, dir).CombinedOutput(); err != nil {
		t.Fatalf("numpy: %v\n%s", err, out)
	}
	read := func(path string, layer int) []float32 {
		t.Helper()
		d, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		l := d.Layers[0]
		if layer >= 0 {
			l = d.Layer(layer)
		}
		x := make([]float32, l.Rows*l.DModel)
		if err := l.ReadRows(0, x); err != nil {
			t.Fatal(err)
		}
		return x
	}
	want := readFloats(t, filepath.Join(dir, "x.txt"))
	wantF2 := readFloats(t, filepath.Join(dir, "f2.txt"))
	for _, c := range []struct {
		path  string
		layer int
		want  []float32
	}{
		{"f4.npy", -1, want}, {"be.npy", -1, want}, {"v2.npy", -1, want}, {"v3.npy", -1, want}, {"f2.npy", -1, wantF2},
		{"s.npz", 3, want}, {"c.npz", 3, want},
	} {
		got := read(filepath.Join(dir, c.path), c.layer)
		if len(got) != len(c.want) {
			t.Fatalf("%s: %d values, numpy has %d", c.path, len(got), len(c.want))
		}
		for i := range got {
			if got[i] != c.want[i] {
				t.Errorf("%s value %d: %v, numpy says %v", c.path, i, got[i], c.want[i])
			}
		}
	}

	// numpy reads what rise writes, float16 rounding included.
	for _, dt := range []DType{Float32, Float16} {
		ddir, data := testDump(t, 50, 6, []int{4}, 20, dt)
		check := `
import numpy as np, sys, json
m = json.load(open(sys.argv[1] + "/manifest.json"))
x = np.concatenate([np.load(sys.argv[1] + "/" + s) for s in m["layers"]["4"]])
print(x.dtype, x.shape, repr(float(x.astype(np.float64).sum())))
`
		out, err := exec.Command(py, "-c", check, ddir).CombinedOutput()
		if err != nil {
			t.Fatalf("numpy could not load a %s dump: %v\n%s", dt, err, out)
		}
		var sum float64
		for _, v := range data[4] {
			sum += float64(v)
		}
		fields := strings.Fields(string(out))
		if len(fields) != 4 || fields[0] != map[DType]string{Float32: "float32", Float16: "float16"}[dt] || fields[1]+fields[2] != "(50,6)" {
			t.Fatalf("numpy sees %q", out)
		}
		if got := parseFloat(t, fields[3]); abs(got-sum) > 1e-6*max(1, abs(sum)) {
			t.Errorf("%s: numpy's sum %v, rise wrote %v", dt, got, sum)
		}
	}
}

func readFloats(t *testing.T, path string) []float32 {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []float32
	for _, f := range strings.Fields(string(b)) {
		out = append(out, float32(parseFloat(t, f)))
	}
	return out
}

func parseFloat(t *testing.T, s string) float64 {
	t.Helper()
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func abs(x float64) float64 { return math.Abs(x) }
