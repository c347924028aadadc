package report

import (
	"encoding/json"

	"github.com/rise-interp/rise/internal/files"
	"github.com/rise-interp/rise/internal/inputerr"
	"github.com/rise-interp/rise/sae/atlas"
	"github.com/rise-interp/rise/steer"
)

// The files a report reads, as rise atlas --sweep, rise steer and rise
// confidence write them.
const (
	SweepFormat      = atlas.SweepFormat
	SteerFormat      = steer.ResultsFormat
	ConfidenceFormat = steer.ConfidenceFormat
)

type (
	// Sweep is sweep.json: the separation of behaviours and of response
	// lengths on each layer.
	Sweep = atlas.SweepFile
	// Steering is results.json: a sweep of strengths with its controls,
	// intervals and p-values.
	Steering = steer.Results
	// Confidence is conf.json: a confidence vector and what it did.
	Confidence = steer.ConfidenceFile
)

// maxReportInput bounds a sweep or steering results file a report reads.
const maxReportInput = 256 << 20

// readJSON reads a JSON file whose "format" must be want.
func readJSON(path, want string, dst any, format func() string) error {
	b, err := files.ReadRegular(path, maxReportInput, want+" JSON")
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
