package report

import (
	"encoding/json"
	"os"

	"github.com/rise-interp/rise/internal/inputerr"
	"github.com/rise-interp/rise/sae/atlas"
	"github.com/rise-interp/rise/steer"
)

// The formats of the files a report reads, as their "format" field names them.
const (
	SweepFormat      = "rise-sweep/1"
	SteerFormat      = "rise-steer/1"
	ConfidenceFormat = "rise-confidence/1"
)

// Sweep is the content of sweep.json, as rise atlas --sweep writes it: the
// separation of behaviours and of response lengths on each layer.
type Sweep struct {
	Format string              `json:"format"`
	Data   string              `json:"data"`
	Seed   uint64              `json:"seed"`
	Layers []*atlas.Separation `json:"layers"`
	Best   map[string]int      `json:"best"`
}

// Steering is the content of results.json, as rise steer writes it: a sweep
// of strengths with, per strength, the behaviours' means, bootstrap
// intervals and p-values, and the same sweep for each control.
type Steering struct {
	Format      string                        `json:"format"`
	Model       string                        `json:"model"`
	Spec        string                        `json:"spec"`
	Prompts     int                           `json:"prompts"`
	Seed        uint64                        `json:"seed"`
	MaxTokens   int                           `json:"max_tokens"`
	Temperature float64                       `json:"temperature"`
	Runs        []steer.Run                   `json:"runs"`
	Controls    []steer.ControlRuns           `json:"controls,omitempty"`
	ControlBand map[string]steer.MeasureRange `json:"control_band,omitempty"`
}

// Confidence is what a report reads of conf.json, as rise confidence writes
// it: the learned vector's top columns, its entropy curve, and what it did.
type Confidence struct {
	Format                string              `json:"format"`
	Model                 string              `json:"model"`
	SAE                   string              `json:"sae"`
	Layer                 int                 `json:"layer"`
	Top                   []steer.ColumnScore `json:"top_columns"`
	Norm                  float64             `json:"norm"`
	Curve                 []float64           `json:"entropy_curve"`
	States                int                 `json:"states"`
	Iters                 int                 `json:"iters"`
	EntropyBefore         float64             `json:"entropy_before"`
	EntropyAfter          float64             `json:"entropy_after"`
	EntropyStates         int                 `json:"entropy_states"`
	ReflectionStepsBefore float64             `json:"reflection_steps_before"`
	ReflectionStepsAfter  float64             `json:"reflection_steps_after"`
	Prompts               int                 `json:"prompts"`
	Spec                  json.RawMessage     `json:"spec"`
}

// readJSON reads a JSON file whose "format" must be want.
func readJSON(path, want string, dst any, format func() string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return inputerr.Wrap(err)
	}
	if err := json.Unmarshal(b, dst); err != nil {
		return inputerr.Errorf("%s: expected %s JSON: %v", path, want, err)
	}
	if got := format(); got != want {
		return inputerr.Errorf("%s: field \"format\": expected %q, found %q", path, want, got)
	}
	return nil
}

// LoadSweep reads sweep.json and checks that it has layers.
func LoadSweep(path string) (*Sweep, error) {
	var s Sweep
	if err := readJSON(path, SweepFormat, &s, func() string { return s.Format }); err != nil {
		return nil, err
	}
	if len(s.Layers) == 0 {
		return nil, inputerr.Errorf("%s: field \"layers\": expected at least one layer, found none", path)
	}
	for i, l := range s.Layers {
		if l == nil {
			return nil, inputerr.Errorf("%s: layers[%d]: expected an object, found null", path, i)
		}
	}
	return &s, nil
}

// LoadSteering reads results.json and checks that every run has the
// intervals a report shows and that the control band spans the runs.
func LoadSteering(path string) (*Steering, error) {
	var s Steering
	if err := readJSON(path, SteerFormat, &s, func() string { return s.Format }); err != nil {
		return nil, err
	}
	if len(s.Runs) == 0 {
		return nil, inputerr.Errorf("%s: field \"runs\": expected at least one strength, found none", path)
	}
	for i, r := range s.Runs {
		if len(r.Behaviours) == 0 {
			return nil, inputerr.Errorf("%s: runs[%d] (strength %g): field \"behaviours\": expected the behaviours' intervals, found none", path, i, r.Strength)
		}
	}
	for name, b := range s.ControlBand {
		if len(b.Lo) != len(s.Runs) || len(b.Hi) != len(s.Runs) {
			return nil, inputerr.Errorf("%s: control_band[%q]: expected %d strengths, found %d lows and %d highs", path, name, len(s.Runs), len(b.Lo), len(b.Hi))
		}
	}
	for _, c := range s.Controls {
		if len(c.Runs) != len(s.Runs) {
			return nil, inputerr.Errorf("%s: control %q: expected %d strengths, found %d", path, c.Name, len(s.Runs), len(c.Runs))
		}
	}
	return &s, nil
}

// LoadConfidence reads conf.json.
func LoadConfidence(path string) (*Confidence, error) {
	var c Confidence
	if err := readJSON(path, ConfidenceFormat, &c, func() string { return c.Format }); err != nil {
		return nil, err
	}
	return &c, nil
}

// LoadAtlas reads atlas.json.
func LoadAtlas(path string) (*atlas.Atlas, error) {
	a, err := atlas.Load(path)
	if err != nil {
		return nil, inputerr.Wrap(err)
	}
	return a, nil
}
