package atlas

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"

	"github.com/rise-interp/rise/activations"
	"github.com/rise-interp/rise/internal/atomicfile"
	"github.com/rise-interp/rise/internal/files"
	"github.com/rise-interp/rise/internal/vec"
	"github.com/rise-interp/rise/sae"
)

// Options configure Build.
type Options struct {
	Layout    string  // "umap" (default) or "pca"
	Clusters  int     // k for k-means; 0 chooses k in [2, 20] by silhouette
	Seed      uint64  // fixes the layout and the clusters
	Neighbors int     // UMAP n_neighbors; default 15
	MinDist   float64 // UMAP min_dist; default 0.1

	Attribution AttributionOptions
	// Attributed, when not nil, is the attribution of the same SAE over the
	// same steps, computed before: Build uses it instead of reading the
	// rows again.
	Attributed *Attribution

	// Progress, when not nil, is told which stage runs and how far it is.
	Progress func(stage string, done, total int)
}

// Feature is one SAE latent in the atlas: its place on the map, its
// cluster, how often it fires, and the behaviour it is most tied to.
type Feature struct {
	ID          int     `json:"id"`
	X           float64 `json:"x"`
	Y           float64 `json:"y"`
	Cluster     int     `json:"cluster"`
	Frequency   float64 `json:"frequency"`
	Behaviour   string  `json:"behaviour,omitempty"` // top behaviour, "" if the latent never fires
	Specificity float64 `json:"specificity"`
	// Explanation and Detection, when the atlas was explained (Annotate):
	// the phrases over-represented in the feature's example steps and how
	// well they alone detect its firing on held-out steps.
	Explanation []Phrase   `json:"explanation,omitempty"`
	Detection   *Detection `json:"detection,omitempty"`
	// Next and NextDetection explain it by the steps that follow the ones
	// it fires on (FeatureExplanation.Next).
	Next          []Phrase   `json:"next,omitempty"`
	NextDetection *Detection `json:"next_detection,omitempty"`
	// Token, when a token probe (rise probe-tokens) measured the feature,
	// is how much of its activation its behaviour's trigger words alone
	// explain, and whether that flags it (RecordTokenProbe).
	Token *TokenFlag `json:"token,omitempty"`
}

// ClusterInfo summarises one cluster of decoder columns.
type ClusterInfo struct {
	ID         int            `json:"id"`
	Size       int            `json:"size"`
	Behaviours map[string]int `json:"behaviours"` // members by top behaviour
	// Explained, when the atlas was explained (Annotate), is the cluster's
	// explanation, coherence and enrichment (its vector left out).
	Explained *GroupExplanation `json:"explained,omitempty"`
}

// BehaviourInfo is a behaviour's specific columns and its vector: the
// renormalised mean of their unit decoder rows (RISE, §4.2).
type BehaviourInfo struct {
	Steps   int       `json:"steps"`
	Columns []int     `json:"columns"`
	Vector  []float32 `json:"vector,omitempty"`
	Error   string    `json:"error,omitempty"` // why there is no vector, if there is none
	// HeldOut judges the columns, chosen on the selection half, on the
	// held-out half's steps (when the atlas was built with a split).
	HeldOut *HeldOutInfo `json:"held_out,omitempty"`
	// ShuffledVector is the same construction on the selection steps with
	// their labels shuffled (when the atlas was built with Shuffled): a
	// steering control of the same kind that carries no behaviour. The
	// evidence rule refuses every column of a random label, so it is built
	// without it (ShuffledRule).
	ShuffledVector []float32 `json:"shuffled_vector,omitempty"`
	// TokenColumns, when a token probe ran, are the columns it flagged as
	// seeing only the trigger tokens; Vector then leaves them out, and
	// VectorWithTokens is the vector with them (RecordTokenProbe).
	TokenColumns     []int     `json:"token_columns,omitempty"`
	VectorWithTokens []float32 `json:"vector_with_token_features,omitempty"`
}

// ShuffledRule is how the shuffled-label control vector is built: the
// atlas's quantile, a looser drop and no evidence rule, which no random
// label could meet.
var ShuffledRule = SpecificOptions{StrongRatio: 0.9, MinFirings: -1, MinEnrichment: -1}

// HeldOutInfo is how a behaviour's columns fare on the held-out steps.
type HeldOutInfo struct {
	Steps int `json:"steps"` // held-out steps carrying the behaviour
	// Specificity and Enrichment are the columns' means there; Kept is how
	// many of the columns the same rule would choose there.
	Specificity float64 `json:"specificity"`
	Enrichment  float64 `json:"enrichment"`
	Kept        int     `json:"kept"`
}

// SplitInfo says which steps chose the behaviour columns and which judged
// them: the traces were split by a hash of their id and the seed.
type SplitInfo struct {
	HoldOut         float64 `json:"hold_out"` // share of the traces held out
	Seed            uint64  `json:"seed"`
	SelectionTraces int     `json:"selection_traces"`
	SelectionSteps  int     `json:"selection_steps"`
	HeldOutTraces   int     `json:"held_out_traces"`
	HeldOutSteps    int     `json:"held_out_steps"`
	ColumnsChosenOn string  `json:"columns_chosen_on"` // "selection"
	MeasuredOn      string  `json:"measured_on"`       // "held_out"
}

// Atlas is the content of atlas.json.
type Atlas struct {
	Format     string                   `json:"format"`
	Layout     string                   `json:"layout"`
	Seed       uint64                   `json:"seed"`
	DIn        int                      `json:"d_in"`
	DSae       int                      `json:"d_sae"`
	Rows       int                      `json:"rows"`
	Features   []Feature                `json:"features"`
	Clusters   []ClusterInfo            `json:"clusters"`
	Behaviours map[string]BehaviourInfo `json:"behaviours"`
	// Silhouette holds cosine silhouettes over the decoder columns:
	// "clusters" for the k-means clusters, "behaviours" for the columns
	// specific to a behaviour labelled by it, and "behaviours_shuffled" for
	// the same columns with the labels shuffled (a baseline near 0);
	// "named_behaviours" and its "_shuffled" the same without the
	// catch-all label (CatchAll), where at least two behaviours remain.
	Silhouette map[string]float64 `json:"silhouette"`
	// ClusterChoice holds the silhouette of each k tried when k was chosen.
	ClusterChoice map[string]float64 `json:"cluster_choice,omitempty"`
	// Split, when the atlas was built with one, says which traces chose
	// the behaviour columns and which judged them (BehaviourInfo.HeldOut).
	Split *SplitInfo `json:"split,omitempty"`
	// Attribution is "next" when each step state was tied to the labels of
	// the step after it (AttributionOptions.NextStep), empty for its own.
	Attribution string `json:"attribution,omitempty"`
	// Rule is the evidence a column needs to be tied to a behaviour.
	Rule *RuleInfo `json:"rule,omitempty"`
	// Candidates, when the atlas was explained (Annotate), are the
	// candidate behaviours nobody named, best first.
	Candidates []GroupExplanation `json:"candidates,omitempty"`
	// TokenProbes, by behaviour, are the token probes recorded in the
	// atlas (without their per-feature scores, which are in Features).
	TokenProbes map[string]*TokenProbe `json:"token_probes,omitempty"`
}

// RuleInfo states the attribution rule an atlas applied (SpecificOptions).
type RuleInfo struct {
	Measure       string  `json:"measure"`
	Quantile      float64 `json:"quantile"`
	StrongRatio   float64 `json:"strong_ratio"`
	MinFirings    int     `json:"min_firings"`
	MinEnrichment float64 `json:"min_enrichment"`
}

// AtlasFormat tags atlas.json.
const AtlasFormat = "rise-atlas/1"

// Build lays out, clusters and attributes the decoder columns of s, using
// the layer's rows and their step labels for the attribution.
func Build(ctx context.Context, s *sae.SAE, layer *activations.Layer, steps []activations.Step, opts Options) (*Atlas, error) {
	opts.Layout = cmp.Or(opts.Layout, "umap")
	if opts.Layout != "umap" && opts.Layout != "pca" {
		return nil, fmt.Errorf("atlas: layout must be umap or pca, got %q", opts.Layout)
	}
	prog := func(stage string, done, total int) {
		if opts.Progress != nil {
			opts.Progress(stage, done, total)
		}
	}
	n, d := s.DSae, s.DIn
	w := vec.UnitRows(s.WDec, n, d)

	attr := opts.Attributed
	if attr == nil {
		prog("attribution", 0, 1)
		a, err := Attribute(ctx, s, layer, steps, opts.Attribution)
		if err != nil {
			return nil, err
		}
		attr = a
		prog("attribution", 1, 1)
	} else if rows := attr.Rows + heldOutRows(attr); attr.DSae != n || rows != layer.Rows {
		return nil, fmt.Errorf("atlas: the attribution given covers %d columns and %d rows, expected %d and %d", attr.DSae, rows, n, layer.Rows)
	}

	var xy []float64
	var err error
	switch opts.Layout {
	case "pca":
		xy, _, err = PCA(ctx, w, n, d, 2, opts.Seed)
	default:
		xy, err = UMAP(w, n, d, UMAPOptions{Neighbors: opts.Neighbors, MinDist: opts.MinDist, Seed: opts.Seed, Context: ctx,
			Progress: func(done, total int) { prog("umap", done, total) }})
	}
	if err != nil {
		return nil, err
	}

	a := &Atlas{Format: AtlasFormat, Layout: opts.Layout, Seed: opts.Seed, DIn: d, DSae: n, Rows: layer.Rows,
		Behaviours: map[string]BehaviourInfo{}, Silhouette: map[string]float64{}}
	k := opts.Clusters
	kopts := KMeansOptions{Restarts: 3, Seed: opts.Seed, Context: ctx}
	if k == 0 {
		prog("clusters", 0, 1)
		best, scores, err := chooseClusters(ctx, w, n, d, opts.Seed)
		if err != nil {
			return nil, err
		}
		k = best
		a.ClusterChoice = map[string]float64{}
		for c, v := range scores {
			a.ClusterChoice[fmt.Sprint(c)] = v
		}
	}
	cl, err := KMeans(w, n, d, k, kopts)
	if err != nil {
		return nil, err
	}
	prog("clusters", 1, 1)
	if k >= 2 && k < n {
		if sc, _, err := SilhouetteSample(w, n, d, cl.Labels, silhouettePoints, opts.Seed); err == nil {
			a.Silhouette["clusters"] = sc
		}
	}

	// Features.
	var labelled float64
	for _, c := range attr.Counts {
		labelled += float64(c)
	}
	// A feature is named for the behaviour it is most active on only when
	// the attribution rule's evidence holds (DefaultMinFirings,
	// DefaultMinEnrichment), as for the behaviour vectors' columns.
	rule, err := opts.Attribution.Specific.withDefaults(attr)
	if err != nil {
		return nil, fmt.Errorf("atlas: %w", err)
	}
	a.Features = make([]Feature, n)
	for j := range n {
		f := Feature{ID: j, X: xy[2*j], Y: xy[2*j+1], Cluster: cl.Labels[j], Specificity: float64(attr.Specificity[j])}
		var fires float64
		for b, c := range attr.Counts {
			fires += float64(attr.Rate[b][j]) * float64(c)
		}
		if labelled > 0 {
			f.Frequency = fires / labelled
		}
		if t := attr.Top[j]; t >= 0 && attr.Evidence(t, j, rule) {
			f.Behaviour = attr.Behaviours[t]
		}
		a.Features[j] = f
	}
	a.Clusters = make([]ClusterInfo, k)
	for c := range a.Clusters {
		a.Clusters[c] = ClusterInfo{ID: c, Behaviours: map[string]int{}}
	}
	for _, f := range a.Features {
		a.Clusters[f.Cluster].Size++
		if f.Behaviour != "" {
			a.Clusters[f.Cluster].Behaviours[f.Behaviour]++
		}
	}

	// Behaviour vectors, and the silhouette of behaviour-specific columns.
	for b, name := range attr.Behaviours {
		vec, ids, err := attr.BehaviourVectorWith(name, opts.Attribution.Specific)
		info := BehaviourInfo{Steps: attr.Counts[b], Columns: ids, Vector: vec}
		if err != nil {
			info.Error = err.Error()
		}
		if info.Columns == nil {
			info.Columns = []int{}
		}
		a.Behaviours[name] = info
	}
	a.Rule = &RuleInfo{Measure: string(rule.Measure), Quantile: rule.Quantile, StrongRatio: rule.StrongRatio,
		MinFirings: rule.MinFirings, MinEnrichment: rule.MinEnrichment}
	if sh := attr.Shuffled; sh != nil {
		for name, info := range a.Behaviours {
			if v, _, err := sh.BehaviourVectorWith(name, ShuffledRule); err == nil {
				info.ShuffledVector = v
				a.Behaviours[name] = info
			}
		}
	}
	if attr.Options.NextStep {
		a.Attribution = "next"
	}
	if h := attr.HeldOut; h != nil {
		a.Split = &SplitInfo{HoldOut: attr.Options.HoldOut, Seed: attr.Options.HoldOutSeed,
			SelectionTraces: attr.Traces, SelectionSteps: attr.Rows, HeldOutTraces: attr.HeldOutTraces, HeldOutSteps: h.Rows,
			ColumnsChosenOn: "selection", MeasuredOn: "held_out"}
		for name, info := range a.Behaviours {
			a.Behaviours[name] = withHeldOut(info, name, h, rule)
		}
	}
	if cs, err := columnSilhouettes(attr, w, d, opts.Attribution.Specific, opts.Seed); err == nil {
		a.Silhouette["behaviours"] = cs.real
		a.Silhouette["behaviours_shuffled"] = cs.shuffled
	}
	// The same without the catch-all label: with three groups of a few
	// columns, shuffled labels average below 0 (each column's nearest other
	// group is the closer of two by chance; on the demo's block 3, 14
	// columns in groups of 5, 4 and 5, −0.07 over 2,000 shuffles), and two
	// named behaviours have no such bias.
	if cs, err := columnSilhouettes(attr, w, d, opts.Attribution.Specific, opts.Seed, CatchAll); err == nil {
		a.Silhouette["named_behaviours"] = cs.real
		a.Silhouette["named_behaviours_shuffled"] = cs.shuffled
	}
	return a, nil
}

// heldOutRows is the number of rows an attribution held out.
func heldOutRows(a *Attribution) int {
	if a.HeldOut == nil {
		return 0
	}
	return a.HeldOut.Rows
}

// withHeldOut adds to a behaviour's info how its columns fare on the
// held-out attribution h.
func withHeldOut(info BehaviourInfo, name string, h *Attribution, rule SpecificOptions) BehaviourInfo {
	b, err := h.Behaviour(name)
	if err != nil {
		return info
	}
	ho := &HeldOutInfo{Steps: h.Counts[b]}
	if len(info.Columns) > 0 {
		kept, _ := h.SpecificColumns(name, rule)
		for _, j := range info.Columns {
			ho.Specificity += float64(h.Specificity[j])
			ho.Enrichment += h.Enrichment(b, j)
			if slices.Contains(kept, j) {
				ho.Kept++
			}
		}
		ho.Specificity /= float64(len(info.Columns))
		ho.Enrichment /= float64(len(info.Columns))
	}
	info.HeldOut = ho
	return info
}

// Sample sizes of the cluster choice and of the clusters' silhouette; an
// atlas of at most this many columns uses them all.
const (
	chooseKPoints    = 2048
	silhouettePoints = 8192
)

// chooseKRestarts and chooseKMaxIter are the k-means of the cluster
// choice: three seedings, as for the atlas's clusters, but at most 30 Lloyd
// iterations per seeding; the choice only compares the silhouettes of the
// candidate k. One or two seedings per k chose a wrong k on planted
// clusters where three did not (TestChooseClustersMatchesFullSearch).
const (
	chooseKRestarts = 3
	chooseKMaxIter  = 30
)

// chooseClusters chooses k in [2, 20] by the mean silhouette of spherical
// k-means (ChooseK), on a random sample of at most chooseKPoints columns
// with k-means capped at chooseKMaxIter iterations. The
// silhouette of a clustering is well estimated from a couple of thousand
// points, and trying 19 values of k with full k-means on every column
// would cost more than the layout; on planted clusters it chooses the k
// the full search does (TestChooseClustersMatchesFullSearch).
func chooseClusters(ctx context.Context, w []float32, n, d int, seed uint64) (int, map[int]float64, error) {
	var ks []int
	for c := 2; c <= min(20, n-1); c++ {
		ks = append(ks, c)
	}
	sub, sn := sampleVectors(w, n, d, chooseKPoints, seed)
	return ChooseK(sub, sn, d, ks, KMeansOptions{Restarts: chooseKRestarts, MaxIter: chooseKMaxIter, Seed: seed, Context: ctx})
}

// sampleVectors returns at most m of the n rows of x, drawn at random with seed
// and kept in order, and their number; x itself when n <= m.
func sampleVectors(x []float32, n, d, m int, seed uint64) ([]float32, int) {
	if n <= m {
		return x, n
	}
	idx := rand.New(rand.NewPCG(seed, 0xc4005e)).Perm(n)[:m]
	sort.Ints(idx)
	out := make([]float32, 0, m*d)
	for _, i := range idx {
		out = append(out, x[i*d:(i+1)*d]...)
	}
	return out, m
}

// Save writes the atlas as JSON, atomically.
func (a *Atlas) Save(path string) error {
	b, err := json.MarshalIndent(a, "", " ")
	if err != nil {
		return fmt.Errorf("atlas %s: %w", path, err)
	}
	return atomicfile.Write(path, append(b, '\n'))
}

// Load reads an atlas.json that Save wrote, refusing another format.
func Load(path string) (*Atlas, error) {
	var a Atlas
	if err := readJSON(path, "an atlas.json", &a); err != nil {
		return nil, err
	}
	if a.Format != AtlasFormat {
		return nil, fmt.Errorf("%s: expected format %q, found %q", path, AtlasFormat, a.Format)
	}
	return &a, nil
}

// maxJSONBytes bounds the JSON files the package reads (atlas.json,
// explanations.json): a few hundred bytes a feature, so tens of megabytes
// at 65,536 features.
const maxJSONBytes = 1 << 30

// readJSON decodes the JSON file at path into v, naming path when it does
// not decode; what says what the file should be.
func readJSON(path, what string, v any) error {
	b, err := files.ReadRegular(path, maxJSONBytes, what)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// Groups returns each feature's behaviour name (for a map coloured by
// behaviour): the behaviour whose specific columns include it, or "".
func (a *Atlas) Groups() []string {
	g := make([]string, len(a.Features))
	names := make([]string, 0, len(a.Behaviours))
	for name := range a.Behaviours {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		for _, id := range a.Behaviours[name].Columns {
			g[id] = name
		}
	}
	return g
}

// XY returns the map coordinates as n (x, y) pairs.
func (a *Atlas) XY() []float64 {
	xy := make([]float64, 2*len(a.Features))
	for i, f := range a.Features {
		xy[2*i], xy[2*i+1] = f.X, f.Y
	}
	return xy
}

func distinct(v []int) int {
	seen := map[int]bool{}
	for _, x := range v {
		seen[x] = true
	}
	return len(seen)
}
