package atlas

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/rise-interp/rise/internal/vec"
)

// TestBuildAtlas builds the atlas of a TopK SAE trained on a planted dump:
// one feature per latent, behaviour vectors along the planted groups, the
// behaviour-specific columns separating (positive silhouette) where shuffled
// labels do not, and the same bytes for the same seed.
func TestBuildAtlas(t *testing.T) {
	p := plantedDump(t)
	ctx := context.Background()
	for _, layout := range []string{"pca", "umap"} {
		t.Run(layout, func(t *testing.T) {
			opts := Options{Layout: layout, Clusters: 8, Seed: 3}
			a, err := Build(ctx, p.sae, p.layer, p.steps, opts)
			if err != nil {
				t.Fatal(err)
			}
			if len(a.Features) != p.sae.DSae || len(a.Clusters) != 8 {
				t.Fatalf("%d features and %d clusters, want %d and 8", len(a.Features), len(a.Clusters), p.sae.DSae)
			}
			for _, b := range []string{"reflection", "backtracking"} {
				v := a.Behaviours[b].Vector
				if v == nil {
					t.Fatalf("no %s vector: %s", b, a.Behaviours[b].Error)
				}
				if c := vec.Cosine(v, groupDirection(t, p.truth, b)); c < 0.7 {
					t.Errorf("%s vector has cosine %.3f with the planted group, want ≥ 0.7", b, c)
				}
			}
			// The map names a feature's behaviour only on the attribution
			// rule's evidence: never for one that fired fewer than
			// DefaultMinFirings times in all.
			weak, named := 0, 0
			for _, f := range a.Features {
				if fires := math.Round(f.Frequency * float64(len(p.steps))); fires < DefaultMinFirings && fires > 0 {
					weak++
					if f.Behaviour != "" {
						named++
					}
				}
			}
			if named > 0 {
				t.Errorf("%d of %d features that fired fewer than %d times are named for a behaviour", named, weak, DefaultMinFirings)
			}
			sb, ss := a.Silhouette["behaviours"], a.Silhouette["behaviours_shuffled"]
			if !(sb > 0.1 && sb > ss+0.1) {
				t.Errorf("silhouette of behaviour columns %.3f, shuffled %.3f: want clearly positive and above the shuffle", sb, ss)
			}
			t.Logf("silhouette behaviours %.3f, shuffled %.3f, clusters %.3f", sb, ss, a.Silhouette["clusters"])
			// Without the catch-all "other", the planted reflection and
			// backtracking columns: apart, and their shuffle near 0.
			nb, ns := a.Silhouette["named_behaviours"], a.Silhouette["named_behaviours_shuffled"]
			if _, ok := a.Silhouette["named_behaviours"]; !ok || !(nb > 0.1 && math.Abs(ns) < 0.1) {
				t.Errorf("silhouette of named behaviours' columns %.3f (present: %v), shuffled %.3f: want clearly positive and a shuffle near 0", nb, ok, ns)
			}
			t.Logf("silhouette named behaviours %.3f, shuffled %.3f", nb, ns)
			path := filepath.Join(t.TempDir(), "atlas.json")
			if err := a.Save(path); err != nil {
				t.Fatal(err)
			}
			again, err := Build(ctx, p.sae, p.layer, p.steps, opts)
			if err != nil {
				t.Fatal(err)
			}
			x, _ := json.Marshal(a)
			y, _ := json.Marshal(again)
			if !bytes.Equal(x, y) {
				t.Error("the same seed gave two atlases")
			}
		})
	}
	if _, err := Build(ctx, p.sae, p.layer, p.steps, Options{Layout: "tsne"}); err == nil {
		t.Error("an unknown layout was accepted")
	}
}

// TestChooseClustersMatchesFullSearch checks that the atlas's cheap cluster
// choice (a sample of the columns, one k-means seeding, few iterations)
// picks the k that the full silhouette search (every column, three
// seedings, k-means to convergence) picks, on planted clusters of unequal
// sizes and spreads, each with more columns than the sample holds.
func TestChooseClustersMatchesFullSearch(t *testing.T) {
	ks := []int{2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20}
	for _, c := range []struct {
		k    int
		seed uint64
	}{{3, 1}, {7, 2}, {12, 3}, {17, 4}} {
		t.Run(fmt.Sprint(c.k), func(t *testing.T) {
			const d = 64
			x, n := unevenClusters(c.k, 2600, d, c.seed)
			full, fullScores, err := ChooseK(x, n, d, ks, KMeansOptions{Restarts: 3, Seed: c.seed})
			if err != nil {
				t.Fatal(err)
			}
			got, scores, err := chooseClusters(context.Background(), x, n, d, c.seed)
			if err != nil {
				t.Fatal(err)
			}
			if full != c.k {
				t.Fatalf("the full search chose k = %d on %d planted clusters (scores %v)", full, c.k, fullScores)
			}
			if got != full {
				t.Errorf("chooseClusters chose k = %d, the full search %d (scores %v, full %v)", got, full, scores, fullScores)
			}
		})
	}
}

// unevenClusters returns about n unit rows in k clusters around random
// directions: cluster c holds a share of the rows proportional to k + c
// and its rows have cosine between about 0.8 and 0.95 with its direction.
func unevenClusters(k, n, d int, seed uint64) ([]float32, int) {
	rng := rand.New(rand.NewPCG(seed, 9))
	dirs := unitRows(rng, k, d)
	var x []float32
	for c := range k {
		members := 2 * n * (k + c) / (k * (3*k - 1))
		noise := (0.3 + 0.4*float64(c)/float64(k)) / math.Sqrt(float64(d))
		for range members {
			row := make([]float32, d)
			for j := range row {
				row[j] = dirs[c*d+j] + float32(noise*rng.NormFloat64())
			}
			clusterUnit(row)
			x = append(x, row...)
		}
	}
	return x, len(x) / d
}
