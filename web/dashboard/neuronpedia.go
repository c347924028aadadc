package dashboard

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/rise-interp/rise/internal/atomicfile"
)

// The layout follows Neuronpedia's own export and import scripts
// (hijohnnylin/neuronpedia, utils/neuronpedia-utils/neuronpedia_utils:
// export-data.py, convert-saedashboard-to-neuronpedia-export.py and the
// dataclasses of db_models/): a source directory
//
//	OUT/<model id>/<layer>-<source set>/
//	    model.jsonl release.jsonl sourceset.jsonl source.jsonl
//	    features/batch-N.jsonl.gz       one Neuron row per feature
//	    activations/batch-N.jsonl.gz    the example activations of the same features
//	    explanations/batch-N.jsonl.gz   their explanations
//
// with the column names of Neuronpedia's database tables.

// NeuronpediaMeta names what Neuronpedia needs to file the export.
type NeuronpediaMeta struct {
	ModelID              string // Neuronpedia's model id, e.g. "deepseek-r1-distill-qwen-1.5b"
	SourceSet            string // the source set, e.g. "rise-res-topk"; the layer is put in front
	SourceSetDescription string // e.g. "Residual Stream, step delimiters - 2k"
	CreatorID            string // written as creatorId / authorId
	CreatorName          string
	ReleaseID            string // the release's name (default: the source set)
	ReleaseTitle         string
	URL                  string
	HookName             string // the hook of the SAE (default: its metadata's, else blocks.L.hook_resid_post)
	Dataset              string // where the steps came from
	Delimiter            string // the step delimiter (default "\n\n")
	BatchSize            int    // features per batch file (default 128)
	CreatedAt            time.Time
}

type npFeature struct {
	ModelID                    string    `json:"modelId"`
	Layer                      string    `json:"layer"`
	Index                      string    `json:"index"`
	CreatorID                  string    `json:"creatorId"`
	CreatedAt                  string    `json:"createdAt"`
	MaxActApprox               float32   `json:"maxActApprox"`
	HasVector                  bool      `json:"hasVector"`
	Vector                     []float32 `json:"vector"`
	VectorLabel                *string   `json:"vectorLabel"`
	VectorDefaultSteerStrength float32   `json:"vectorDefaultSteerStrength"`
	HookName                   string    `json:"hookName"`
	TopkCosSimIndices          []int     `json:"topkCosSimIndices"`
	TopkCosSimValues           []float32 `json:"topkCosSimValues"`
	NeuronAlignmentIndices     []int     `json:"neuron_alignment_indices"`
	NeuronAlignmentValues      []float32 `json:"neuron_alignment_values"`
	NeuronAlignmentL1          []float32 `json:"neuron_alignment_l1"`
	CorrelatedNeuronsIndices   []int     `json:"correlated_neurons_indices"`
	CorrelatedNeuronsPearson   []float32 `json:"correlated_neurons_pearson"`
	CorrelatedNeuronsL1        []float32 `json:"correlated_neurons_l1"`
	CorrelatedFeaturesIndices  []int     `json:"correlated_features_indices"`
	CorrelatedFeaturesPearson  []float32 `json:"correlated_features_pearson"`
	CorrelatedFeaturesL1       []float32 `json:"correlated_features_l1"`
	NegStr                     []string  `json:"neg_str"`
	NegValues                  []float32 `json:"neg_values"`
	PosStr                     []string  `json:"pos_str"`
	PosValues                  []float32 `json:"pos_values"`
	FracNonzero                float64   `json:"frac_nonzero"`
	FreqHistHeights            []float64 `json:"freq_hist_data_bar_heights"`
	FreqHistValues             []float64 `json:"freq_hist_data_bar_values"`
	LogitsHistHeights          []float64 `json:"logits_hist_data_bar_heights"`
	LogitsHistValues           []float64 `json:"logits_hist_data_bar_values"`
	DecoderWeightsDist         []float64 `json:"decoder_weights_dist"`
}

type npActivation struct {
	ID                   string    `json:"id"`
	Tokens               []string  `json:"tokens"`
	Index                string    `json:"index"`
	Layer                string    `json:"layer"`
	ModelID              string    `json:"modelId"`
	MaxValue             float32   `json:"maxValue"`
	MaxValueTokenIndex   int       `json:"maxValueTokenIndex"`
	MinValue             float32   `json:"minValue"`
	Values               []float32 `json:"values"`
	CreatorID            string    `json:"creatorId"`
	DataSource           *string   `json:"dataSource"`
	DataIndex            *string   `json:"dataIndex"`
	DfaValues            []float32 `json:"dfaValues"`
	DfaTargetIndex       *int      `json:"dfaTargetIndex"`
	DfaMaxValue          *float32  `json:"dfaMaxValue"`
	CreatedAt            string    `json:"createdAt"`
	LossValues           []float32 `json:"lossValues"`
	LogitContributions   *string   `json:"logitContributions"`
	BinMin               *float32  `json:"binMin"`
	BinMax               *float32  `json:"binMax"`
	BinContains          *float64  `json:"binContains"`
	QualifyingTokenIndex *int      `json:"qualifyingTokenIndex"`
}

type npExplanation struct {
	ID                   string    `json:"id"`
	ModelID              string    `json:"modelId"`
	Layer                string    `json:"layer"`
	Index                string    `json:"index"`
	Description          string    `json:"description"`
	AuthorID             string    `json:"authorId"`
	Embedding            []float32 `json:"embedding"`
	TriggeredByID        *string   `json:"triggeredById"`
	TypeName             string    `json:"typeName"`
	ExplanationModelName string    `json:"explanationModelName"`
	Notes                string    `json:"notes"`
	CreatedAt            string    `json:"createdAt"`
}

// WriteNeuronpedia writes rep as a Neuronpedia export under out and returns
// the source directory it wrote. Every file is written atomically; ctx
// stops it between batches.
func WriteNeuronpedia(ctx context.Context, out string, rep *Report, meta NeuronpediaMeta) (string, error) {
	switch {
	case meta.ModelID == "" || strings.ContainsAny(meta.ModelID, `/\`):
		return "", fmt.Errorf("neuronpedia export: model id %q: expected a non-empty name without slashes (Neuronpedia's model id)", meta.ModelID)
	case meta.SourceSet == "" || strings.ContainsAny(meta.SourceSet, `/\`):
		return "", fmt.Errorf("neuronpedia export: source set %q: expected a non-empty name without slashes", meta.SourceSet)
	}
	if meta.BatchSize <= 0 {
		meta.BatchSize = 128
	}
	if meta.Delimiter == "" {
		meta.Delimiter = DefaultDelimiter
	}
	if meta.ReleaseID == "" {
		meta.ReleaseID = meta.SourceSet
	}
	if meta.CreatorID == "" {
		meta.CreatorID = "rise"
	}
	if meta.CreatedAt.IsZero() {
		meta.CreatedAt = time.Now().UTC()
	}
	hook := meta.HookName
	if hook == "" {
		hook = rep.Metadata.HookName
	}
	if hook == "" {
		hook = fmt.Sprintf("blocks.%d.hook_resid_post", rep.Layer)
	}
	created := meta.CreatedAt.Format(time.RFC3339)
	source := fmt.Sprintf("%d-%s", rep.Layer, meta.SourceSet)
	dir := filepath.Join(out, meta.ModelID, source)
	for _, sub := range []string{"features", "activations", "explanations"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return "", fmt.Errorf("neuronpedia export: %w", err)
		}
	}
	var dataSource *string
	if meta.Dataset != "" {
		dataSource = &meta.Dataset
	}
	rows := map[string]any{
		"model.jsonl": map[string]any{"id": meta.ModelID, "instruct": false, "creatorId": meta.CreatorID, "displayNameShort": meta.ModelID,
			"displayName": meta.ModelID, "dimension": rep.DIn, "visibility": "PUBLIC", "inferenceEnabled": false, "createdAt": created, "updatedAt": created},
		"release.jsonl": map[string]any{"name": meta.ReleaseID, "description": meta.ReleaseTitle, "descriptionShort": meta.ReleaseTitle,
			"creatorName": meta.CreatorName, "creatorNameShort": meta.CreatorName, "creatorId": meta.CreatorID, "visibility": "PUBLIC",
			"urls": nonNilStrings(meta.URL), "createdAt": created},
		"sourceset.jsonl": map[string]any{"modelId": meta.ModelID, "name": meta.SourceSet, "creatorId": meta.CreatorID, "hasDashboards": true,
			"visibility": "PUBLIC", "description": meta.SourceSetDescription, "creatorName": meta.CreatorName, "releaseName": meta.ReleaseID,
			"urls": nonNilStrings(meta.URL), "createdAt": created},
		"source.jsonl": map[string]any{"id": source, "modelId": meta.ModelID, "setName": meta.SourceSet, "creatorId": meta.CreatorID,
			"hasDashboards": true, "inferenceEnabled": false, "visibility": "PUBLIC", "dataset": meta.Dataset, "num_prompts": rep.Rows,
			"notes": "rise: one activation per reasoning step, at the delimiter token that ends it", "createdAt": created},
	}
	for name, row := range rows {
		b, err := json.Marshal(row)
		if err != nil {
			return "", err
		}
		if err := atomicfile.Write(filepath.Join(dir, name), append(b, '\n')); err != nil {
			return "", fmt.Errorf("neuronpedia export: %w", err)
		}
	}

	id := func(parts ...any) string {
		h := fnv.New128a()
		fmt.Fprint(h, append([]any{meta.ModelID, source}, parts...)...)
		return fmt.Sprintf("rise%x", h.Sum(nil))[:25]
	}
	for b := 0; b*meta.BatchSize < len(rep.Features); b++ {
		if err := ctx.Err(); err != nil {
			return "", fmt.Errorf("neuronpedia export: %w", err)
		}
		batch := rep.Features[b*meta.BatchSize : min((b+1)*meta.BatchSize, len(rep.Features))]
		var feats, acts, expls bytes.Buffer
		fe, ae, ee := json.NewEncoder(&feats), json.NewEncoder(&acts), json.NewEncoder(&expls)
		for _, f := range batch {
			index := strconv.Itoa(f.Index)
			nf := npFeature{ModelID: meta.ModelID, Layer: source, Index: index, CreatorID: meta.CreatorID, CreatedAt: created,
				MaxActApprox: f.Max, HasVector: true, Vector: f.Decoder, VectorDefaultSteerStrength: f.Max, HookName: hook,
				TopkCosSimIndices: []int{}, TopkCosSimValues: []float32{}, NeuronAlignmentIndices: []int{}, NeuronAlignmentValues: []float32{},
				NeuronAlignmentL1: []float32{}, CorrelatedNeuronsIndices: []int{}, CorrelatedNeuronsPearson: []float32{}, CorrelatedNeuronsL1: []float32{},
				CorrelatedFeaturesIndices: []int{}, CorrelatedFeaturesPearson: []float32{}, CorrelatedFeaturesL1: []float32{},
				NegStr: []string{}, NegValues: []float32{}, PosStr: []string{}, PosValues: []float32{},
				FracNonzero: f.Frequency, FreqHistHeights: []float64{}, FreqHistValues: []float64{},
				LogitsHistHeights: []float64{}, LogitsHistValues: []float64{}, DecoderWeightsDist: []float64{}}
			if f.Lens != nil {
				for _, t := range f.Lens.Promoted {
					nf.PosStr, nf.PosValues = append(nf.PosStr, t.Token), append(nf.PosValues, t.Logit)
				}
				for _, t := range f.Lens.Suppressed {
					nf.NegStr, nf.NegValues = append(nf.NegStr, t.Token), append(nf.NegValues, t.Logit)
				}
			}
			for i, c := range f.Hist {
				nf.FreqHistHeights = append(nf.FreqHistHeights, float64(c))
				nf.FreqHistValues = append(nf.FreqHistValues, float64(f.Max)*(float64(i)+0.5)/float64(len(f.Hist)))
			}
			if err := fe.Encode(nf); err != nil {
				return "", err
			}
			for k, x := range append(append([]Example{}, f.Top...), f.Banded...) {
				tokens, values, last := exampleTokens(x, meta.Delimiter)
				na := npActivation{ID: id("activation", f.Index, k), Tokens: tokens, Index: index, Layer: source, ModelID: meta.ModelID,
					MaxValue: x.Value, MaxValueTokenIndex: last, MinValue: minOf(values), Values: values, CreatorID: meta.CreatorID,
					DataSource: dataSource, DataIndex: ptr(fmt.Sprintf("%s:%d", x.Step.Trace, x.Step.Step)), DfaValues: []float32{},
					CreatedAt: created, LossValues: []float32{}, QualifyingTokenIndex: ptr(last)}
				if x.Band >= 0 {
					na.BinMin, na.BinMax = ptr(x.BandLo), ptr(x.BandHi)
					if f.Fires > 0 {
						na.BinContains = ptr(float64(f.BandFires[x.Band]) / float64(f.Fires))
					}
				}
				if err := ae.Encode(na); err != nil {
					return "", err
				}
			}
			if len(f.Phrases) > 0 {
				ne := npExplanation{ID: id("explanation", f.Index), ModelID: meta.ModelID, Layer: source, Index: index,
					Description: Description(f), AuthorID: meta.CreatorID, TypeName: "rise-phrases",
					ExplanationModelName: "rise-log-odds", Notes: DetectionNote(f, rep.HoldOut), CreatedAt: created}
				if err := ee.Encode(ne); err != nil {
					return "", err
				}
			}
		}
		name := fmt.Sprintf("batch-%d.jsonl.gz", b)
		for sub, buf := range map[string]*bytes.Buffer{"features": &feats, "activations": &acts, "explanations": &expls} {
			gz, err := gzipBytes(buf.Bytes())
			if err != nil {
				return "", err
			}
			if err := atomicfile.Write(filepath.Join(dir, sub, name), gz); err != nil {
				return "", fmt.Errorf("neuronpedia export: %w", err)
			}
		}
	}
	return dir, nil
}

// Description is a feature's explanation as one line: its phrases, most
// over-represented first.
func Description(f Feature) string {
	var ps []string
	for _, p := range f.Phrases {
		ps = append(ps, strconv.Quote(p.Text))
	}
	return strings.Join(ps, ", ")
}

// DetectionNote states the detection score of a feature's explanation and
// where it was measured.
func DetectionNote(f Feature, holdOut float64) string {
	d := f.Detection
	if d == nil || d.Steps == 0 {
		return "phrases over-represented in the feature's top and banded steps (weighted log-odds, Monroe et al. 2008); not scored"
	}
	where := "held-out traces"
	if holdOut < 0 {
		where = "the steps the phrases came from"
	}
	return fmt.Sprintf("phrases over-represented in the feature's top and banded steps (weighted log-odds, Monroe et al. 2008); detection on %s (%d steps, %d firing): precision %.3f, recall %.3f, F1 %.3f, AUC %.3f; on as many firing steps as not (as Delphi): precision %.3f, F1 %.3f",
		where, d.Steps, d.Positives, d.Precision, d.Recall, d.F1, d.AUC, d.BalancedPrecision, d.BalancedF1)
}

func gzipBytes(b []byte) ([]byte, error) {
	var buf bytes.Buffer
	w, err := gzip.NewWriterLevel(&buf, 5)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(b); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func ptr[T any](v T) *T { return &v }

func minOf(v []float32) float32 {
	m := v[0]
	for _, x := range v[1:] {
		m = min(m, x)
	}
	return m
}

func nonNilStrings(s ...string) []string {
	out := []string{}
	for _, x := range s {
		if x != "" {
			out = append(out, x)
		}
	}
	return out
}
