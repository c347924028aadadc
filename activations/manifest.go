package activations

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"sort"
	"strconv"

	"github.com/rise-interp/rise/internal/files"
)

// Format is the format tag of a dump directory's manifest.json.
const Format = "rise-activations/1"

// Position names the token whose residual state a row records.
const (
	// PositionStepDelimiter is the delimiter token that ends a step (RISE's choice).
	PositionStepDelimiter = "step_delimiter"
)

// Manifest is the content of manifest.json in a dump directory.
type Manifest struct {
	Format    string              `json:"format"`
	Model     string              `json:"model,omitempty"`
	DModel    int                 `json:"d_model"`
	Position  string              `json:"position,omitempty"`
	Delimiter string              `json:"delimiter,omitempty"`
	Layers    map[string][]string `json:"layers"`
	Steps     string              `json:"steps,omitempty"`
	Traces    string              `json:"traces,omitempty"`

	// Extra holds fields of manifest.json that rise does not know. They are
	// kept so that a rewritten manifest loses nothing.
	Extra map[string]json.RawMessage `json:"-"`
}

// LayerNumbers returns the manifest's layers as sorted integers. A layer key
// that is not a non-negative integer is an error.
func (m *Manifest) LayerNumbers() ([]int, error) {
	out := make([]int, 0, len(m.Layers))
	for k := range m.Layers {
		n, err := strconv.Atoi(k)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("field \"layers\": expected layer numbers (0, 1, ...) as keys, found %q", k)
		}
		out = append(out, n)
	}
	sort.Ints(out)
	return out, nil
}

// maxManifestBytes bounds manifest.json. A manifest names a model, a few
// fields and the shards; even a thousand layers of a thousand shards take
// under 64 MiB, and reading more would cost memory for nothing.
const maxManifestBytes = 64 << 20

// readManifest reads and checks dir/manifest.json.
func readManifest(dir string) (*Manifest, error) {
	path := filepath.Join(dir, "manifest.json")
	data, err := files.ReadRegular(path, maxManifestBytes, "a JSON manifest")
	if err != nil {
		return nil, err
	}
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%s: malformed JSON: %v", path, jsonErr(err, data))
	}
	var all map[string]json.RawMessage
	_ = json.Unmarshal(data, &all)
	for _, k := range []string{"format", "model", "d_model", "position", "delimiter", "layers", "steps", "traces"} {
		delete(all, k)
	}
	if len(all) > 0 {
		m.Extra = all
	}
	switch {
	case m.Format != Format:
		return nil, fmt.Errorf("%s: field \"format\": expected %q, found %q", path, Format, m.Format)
	case m.DModel <= 0:
		return nil, fmt.Errorf("%s: field \"d_model\": expected a positive integer, found %d", path, m.DModel)
	case len(m.Layers) == 0:
		return nil, fmt.Errorf("%s: field \"layers\": expected at least one layer, found none", path)
	}
	if _, err := m.LayerNumbers(); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	for k, shards := range m.Layers {
		if len(shards) == 0 {
			return nil, fmt.Errorf("%s: layer %s: expected at least one shard, found none", path, k)
		}
		for _, s := range shards {
			if !localName(s) {
				return nil, fmt.Errorf("%s: layer %s: shard %q must be a file name inside the dump directory", path, k, s)
			}
		}
	}
	for field, name := range map[string]string{"steps": m.Steps, "traces": m.Traces} {
		if name != "" && !localName(name) {
			return nil, fmt.Errorf("%s: field %q: %q must be a file name inside the dump directory", path, field, name)
		}
	}
	return &m, nil
}

// MarshalJSON writes the known fields and any extra ones.
func (m Manifest) MarshalJSON() ([]byte, error) {
	type plain Manifest
	base, err := json.Marshal(plain(m))
	if err != nil || len(m.Extra) == 0 {
		return base, err
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(base, &all); err != nil {
		return nil, err
	}
	for k, v := range m.Extra {
		if _, ok := all[k]; !ok {
			all[k] = v
		}
	}
	return json.Marshal(all)
}

// localName reports whether name is a plain relative path that stays inside
// the dump directory (no absolute paths, no "..").
func localName(name string) bool {
	return name != "" && filepath.IsLocal(name)
}

// jsonErr adds the line and column to a JSON syntax error.
func jsonErr(err error, data []byte) error {
	if se, ok := err.(*json.SyntaxError); ok {
		line, col := 1, 1
		for _, c := range data[:min(int(se.Offset), len(data))] {
			if c == '\n' {
				line++
				col = 1
			} else {
				col++
			}
		}
		return fmt.Errorf("line %d, column %d: %v", line, col, err)
	}
	return err
}
