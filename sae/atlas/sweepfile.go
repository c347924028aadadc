package atlas

// SweepFormat tags sweep.json.
const SweepFormat = "rise-sweep/1"

// SweepFile is the content of sweep.json, as rise atlas --sweep writes it:
// the separation of behaviours and of response lengths on each layer.
type SweepFile struct {
	Format string        `json:"format"`
	Data   string        `json:"data"`
	Seed   uint64        `json:"seed"`
	Layers []*Separation `json:"layers"`
	// Best names, for each figure, the layer where it is highest.
	Best map[string]int `json:"best"`
}
