package web

import (
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/rise-interp/rise/activations"
	"github.com/rise-interp/rise/sae"
)

// TestAtlasSelectionAndClustersAPI: a selection's vector and steps refuse a
// bad features or top parameter with a 400 that says what was expected and
// what was found, and an unknown SAE with a 404; a feature asked for no
// nearest features answers an empty list. The clusters of another k than
// the atlas's are a spherical k-means fixed point (each column with the
// centroid nearest to it, each centroid the renormalised mean of its
// members); those of the atlas's k are the atlas's.
func TestAtlasSelectionAndClustersAPI(t *testing.T) {
	ts, _, dir := givenServer(t)
	ts.waitReady(t, "given")

	for _, c := range []struct {
		path   string
		status int
		want   string
	}{
		{"/api/saes/given/selection/vector.npy", 400, "parameter features: expected comma-separated feature ids from 0 to 127, found none"},
		{"/api/saes/given/selection/vector.npy?features=1,x", 400, `found "x"`},
		{"/api/saes/given/selection/vector.npy?features=128", 400, `ids from 0 to 127, found "128"`},
		{"/api/saes/given/selection/steps?features=-1", 400, `found "-1"`},
		{"/api/saes/given/selection/steps?features=1&top=201", 400, "parameter top: expected at most 200, found 201"},
		{"/api/saes/given/selection/steps?features=1&top=x", 400, `parameter top: expected a non-negative integer, found "x"`},
		{"/api/saes/nope/selection/steps?features=1", 404, `no SAE "nope"`},
		{"/api/saes/given/clusters?k=1", 400, "parameter k: expected 2 to 100 clusters, found 1"},
		{"/api/saes/given/clusters?k=101", 400, "parameter k: expected at most 100, found 101"},
	} {
		var e struct{ Error string }
		if code := ts.get(t, c.path, &e); code != c.status || !strings.Contains(e.Error, c.want) {
			t.Errorf("GET %s: %d %q, want %d and %q", c.path, code, e.Error, c.status, c.want)
		}
	}

	var f struct {
		Nearest  []nearView `json:"nearest"`
		TopSteps []topStep  `json:"top_steps"`
	}
	if code := ts.get(t, "/api/saes/given/features/3?top=1&nearest=0", &f); code != http.StatusOK || f.Nearest == nil || len(f.Nearest) != 0 {
		t.Errorf("GET a feature with nearest=0: %d, nearest %v; want 200 and an empty list", code, f.Nearest)
	}

	var own struct {
		Features []struct{ Cluster int } `json:"features"`
		Clusters []struct{ Size int }    `json:"clusters"`
	}
	ts.get(t, "/api/saes/given/atlas", &own)
	var cv clusterView
	if code := ts.get(t, "/api/saes/given/clusters", &cv); code != http.StatusOK || !cv.Chosen || cv.K != len(own.Clusters) {
		t.Fatalf("GET clusters: %d, k %d chosen %v; want the atlas's k %d", code, cv.K, cv.Chosen, len(own.Clusters))
	}
	for i, f := range own.Features {
		if cv.Labels[i] != f.Cluster {
			t.Fatalf("the clusters of the atlas's k differ from the atlas's at feature %d: %d vs %d", i, cv.Labels[i], f.Cluster)
		}
	}

	k := len(own.Clusters) + 1
	if code := ts.get(t, fmt.Sprintf("/api/saes/given/clusters?k=%d", k), &cv); code != http.StatusOK || cv.K != k || cv.Chosen || len(cv.Labels) != 128 {
		t.Fatalf("GET clusters?k=%d: %d, k %d, chosen %v, %d labels", k, code, cv.K, cv.Chosen, len(cv.Labels))
	}
	if cv.Silhouette == nil || *cv.Silhouette < -1 || *cv.Silhouette > 1 {
		t.Errorf("clusters?k=%d: silhouette %v", k, cv.Silhouette)
	}
	s, err := sae.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	d := s.DIn
	unit := make([][]float64, s.DSae)
	for j := range unit {
		var norm float64
		for _, w := range s.WDec[j*d : (j+1)*d] {
			norm += float64(w) * float64(w)
		}
		unit[j] = make([]float64, d)
		for i, w := range s.WDec[j*d : (j+1)*d] {
			unit[j][i] = float64(w) / math.Sqrt(norm)
		}
	}
	cent := make([][]float64, k)
	for c := range cent {
		cent[c] = make([]float64, d)
	}
	sizes := make([]int, k)
	for j, l := range cv.Labels {
		if l < 0 || l >= k {
			t.Fatalf("feature %d in cluster %d of %d", j, l, k)
		}
		sizes[l]++
		for i, x := range unit[j] {
			cent[l][i] += x
		}
	}
	if fmt.Sprint(sizes) != fmt.Sprint(cv.Sizes) {
		t.Errorf("sizes %v, counted %v", cv.Sizes, sizes)
	}
	dot := func(a, b []float64) float64 {
		var s float64
		for i := range a {
			s += a[i] * b[i]
		}
		return s
	}
	for c := range cent {
		if sizes[c] == 0 {
			t.Fatalf("cluster %d of %d is empty", c, k)
		}
		n := math.Sqrt(dot(cent[c], cent[c]))
		for i := range cent[c] {
			cent[c][i] /= n
		}
	}
	for j, l := range cv.Labels {
		for c := range cent {
			if dot(unit[j], cent[c]) > dot(unit[j], cent[l])+1e-4 {
				t.Fatalf("feature %d is in cluster %d but nearer the centroid of %d (cos %.5f vs %.5f)", j, l, c, dot(unit[j], cent[c]), dot(unit[j], cent[l]))
			}
		}
	}
}

// TestSelectionStepsByArch: the selection's top steps are the rows with the
// largest sum of the selected latents, as the full encoder gives them,
// for a ReLU and a JumpReLU SAE (which encode the selected latents only)
// and a TopK one (which encodes every latent).
func TestSelectionStepsByArch(t *testing.T) {
	dump := plantedDump(t)
	d, err := activations.Open(dump)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	layer := d.Layers[0]
	dirs := map[string]string{}
	for i, arch := range []sae.Arch{sae.Standard, sae.JumpReLU, sae.TopK} {
		s, err := sae.New(arch, layer.DModel, 96, 6)
		if err != nil {
			t.Fatal(err)
		}
		s.Init(uint64(i+1), 1, nil, 0.05)
		rng := rand.New(rand.NewPCG(uint64(i), 7))
		for j := range s.BEnc {
			s.BEnc[j] = float32(rng.NormFloat64() * 0.1)
		}
		for j := range s.BDec {
			s.BDec[j] = float32(rng.NormFloat64() * 0.1)
		}
		for j := range s.Threshold {
			// about the size of the pre-activations (which reach some 8), so
			// that the thresholds decide which rows fire
			s.Threshold[j] = float32(rng.Float64() * 6)
		}
		s.Metadata.HookLayer = layer.Number
		name := "sae-" + string(arch)
		dirs[name] = filepath.Join(t.TempDir(), name)
		if err := sae.Save(dirs[name], s, sae.SaveOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	ts := serverOn(t, dump, filepath.Join(t.TempDir(), "work"), slices.Collect(maps.Values(dirs))...)
	for name, dir := range dirs {
		ts.waitReady(t, name)
		s, err := sae.Load(dir)
		if err != nil {
			t.Fatal(err)
		}
		f := encodeAll(t, s, layer)
		// The selection: five latents that fire neither most nor least.
		fires := make([]int, s.DSae)
		for i, v := range f {
			if v > 0 {
				fires[i%s.DSae]++
			}
		}
		order := make([]int, s.DSae)
		for j := range order {
			order[j] = j
		}
		sort.SliceStable(order, func(a, b int) bool { return fires[order[a]] > fires[order[b]] })
		ids := slices.Sorted(slices.Values(order[5:10]))
		query := fmt.Sprint(ids[4], ",", ids[0], ",", ids[1], ",", ids[2], ",", ids[3], ",", ids[0]) // unordered, one twice
		type scored struct {
			row    int
			sum    float64
			firing int
		}
		var ref []scored
		for row := range layer.Rows {
			var c scored
			c.row = row
			for _, id := range ids {
				if v := f[row*s.DSae+id]; v > 0 {
					c.sum += float64(v)
					c.firing++
				}
			}
			if c.firing > 0 {
				ref = append(ref, c)
			}
		}
		sort.SliceStable(ref, func(i, j int) bool { return ref[i].sum > ref[j].sum })
		var got struct {
			Rows  int             `json:"rows"`
			Steps []selectionStep `json:"steps"`
		}
		if code := ts.get(t, "/api/saes/"+name+"/selection/steps?top=200&features="+query, &got); code != http.StatusOK {
			t.Fatalf("%s: selection steps: %d", name, code)
		}
		if len(ref) < 200 || len(got.Steps) != 200 || got.Rows != layer.Rows {
			t.Fatalf("%s: %d steps of %d rows, want 200 of %d (%d rows fire)", name, len(got.Steps), got.Rows, layer.Rows, len(ref))
		}
		for i, st := range got.Steps {
			var sum float64
			firing := 0
			for _, id := range ids {
				if v := f[st.Row*s.DSae+id]; v > 0 {
					sum += float64(v)
					firing++
				}
			}
			if math.Abs(st.Value-ref[i].sum) > 1e-4*ref[i].sum || math.Abs(sum-st.Value) > 1e-4*sum || firing != st.Firing {
				t.Fatalf("%s: step %d is row %d with sum %g (%d firing); the encoder gives that row %g (%d firing), and rank %d row %d with %g",
					name, i, st.Row, st.Value, st.Firing, sum, firing, i, ref[i].row, ref[i].sum)
			}
		}
	}
}
