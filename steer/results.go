package steer

// The files rise steer and rise confidence write, as rise report reads
// them back.
const (
	// ResultsFormat tags results.json.
	ResultsFormat = "rise-steer/1"
	// ConfidenceFormat tags conf.json.
	ConfidenceFormat = "rise-confidence/1"
)

// Results is the content of results.json, as rise steer writes it: a sweep
// of strengths with, per strength, the behaviours' means, bootstrap
// intervals and p-values, and the same sweep for each control.
type Results struct {
	Format      string  `json:"format"`
	Model       string  `json:"model"`
	Spec        string  `json:"spec"`
	Prompts     int     `json:"prompts"`
	Seed        uint64  `json:"seed"`
	MaxTokens   int     `json:"max_tokens"`
	Temperature float64 `json:"temperature"`
	Runs        []Run   `json:"runs"`
	// Controls are the same sweep with random directions in place of the
	// spec's (same layers, operators, positions and strengths), and
	// ControlBand the range of their means at each strength, per measure.
	Controls    []ControlRuns           `json:"controls,omitempty"`
	ControlBand map[string]MeasureRange `json:"control_band,omitempty"`
}

// ConfidenceFile is the content of conf.json, as rise confidence writes
// it: the learned vector with its top columns and entropy curve, and what
// it did to the entropy at step boundaries and to reflection steps.
type ConfidenceFile struct {
	Format string `json:"format"`
	Model  string `json:"model"`
	SAE    string `json:"sae"`
	ConfidenceResult
	Iters                 int     `json:"iters"`
	EntropyBefore         float64 `json:"entropy_before"`
	EntropyAfter          float64 `json:"entropy_after"`
	EntropyStates         int     `json:"entropy_states"`
	ReflectionStepsBefore float64 `json:"reflection_steps_before"`
	ReflectionStepsAfter  float64 `json:"reflection_steps_after"`
	Prompts               int     `json:"prompts"`
	Spec                  Spec    `json:"spec"`
}
