package atlas

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
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
