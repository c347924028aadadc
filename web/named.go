package web

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"path/filepath"
	"slices"
	"strings"

	"github.com/rise-interp/rise/activations/label"
	"github.com/rise-interp/rise/internal/atomicfile"
	"github.com/rise-interp/rise/internal/files"
)

// Behaviours a user named (a candidate behaviour, with its phrases as a
// keyword rule) are kept per dataset in Dir/behaviours.json. Each labels
// the dataset's steps its phrases match, beside the labels of the dump's
// steps.jsonl (which stays as it is), so attribution, the atlas, the
// behaviours page and the steering sweep count it like the built-in ones.
const (
	namedFile     = "behaviours.json"
	namedFormat   = "rise-behaviours/1"
	maxNamedBytes = 1 << 20
	maxPhrases    = 32
	maxPhraseLen  = 200
)

type namedBehaviours struct {
	Format   string                     `json:"format"`
	Datasets map[string]json.RawMessage `json:"datasets"` // label.Rules, as LoadRules reads them
}

// readNamed returns the named behaviours of every dataset.
func (w *Workspace) readNamed() (map[string]label.Rules, error) {
	path := filepath.Join(w.Dir, namedFile)
	b, err := files.ReadRegular(path, maxNamedBytes, "named behaviours")
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]label.Rules{}, nil
	}
	if err != nil {
		return nil, err
	}
	var f namedBehaviours
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("%s: expected {\"format\": %q, \"datasets\": {...}}: %v", path, namedFormat, err)
	}
	if f.Format != namedFormat {
		return nil, fmt.Errorf("%s: format %q, expected %q", path, f.Format, namedFormat)
	}
	out := map[string]label.Rules{}
	for ds, raw := range f.Datasets {
		rules, err := label.ParseRules(raw)
		if err != nil {
			return nil, fmt.Errorf("%s: dataset %s: %v", path, ds, err)
		}
		out[ds] = rules
	}
	return out, nil
}

// writeNamed saves the named behaviours of every dataset.
func (w *Workspace) writeNamed(all map[string]label.Rules) error {
	f := namedBehaviours{Format: namedFormat, Datasets: map[string]json.RawMessage{}}
	for ds, rules := range all {
		b, err := json.Marshal(rules)
		if err != nil {
			return err
		}
		f.Datasets[ds] = b
	}
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(w.Dir, namedFile), append(b, '\n'))
}

// applyNamed labels the steps the rules match with the rules' behaviours
// (a step so labelled is no longer "other") and rebuilds the indexes. It
// returns how many steps each rule labelled.
func (ds *Dataset) applyNamed(rules label.Rules) (map[string]int, error) {
	m, err := rules.Compile()
	if err != nil {
		return nil, err
	}
	counts := map[string]int{}
	for i := range ds.Steps {
		st := &ds.Steps[i]
		for _, l := range m.Labels(st.Text) {
			if l == label.Other {
				continue
			}
			counts[l]++
			if !st.HasLabel(l) {
				st.Labels = append(slices.DeleteFunc(st.Labels, func(x string) bool { return x == label.Other }), l)
			}
		}
	}
	ds.named = rules
	ds.labels, ds.lengths, ds.traceRows, ds.traceOrder = map[string]int{}, map[string]int{}, map[string][]int{}, nil
	ds.index()
	return counts, nil
}

// namedHash names a dataset's named behaviours in derived.json, so that
// files derived under other labels are not reused; "" when there are none.
func (ds *Dataset) namedHash() string {
	if len(ds.named) == 0 {
		return ""
	}
	b, _ := json.Marshal(ds.named)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// matcher is RISE's keyword rules and every behaviour named in the
// workspace: what a steering sweep counts.
func (w *Workspace) matcher() (*label.Matcher, error) {
	rules := label.DefaultRules()
	for _, ds := range w.Datasets() {
		for _, r := range ds.named {
			if !slices.ContainsFunc(rules, func(x label.Rule) bool { return x.Behaviour == r.Behaviour }) {
				rules = append(rules, r)
			}
		}
	}
	return rules.Compile()
}

// NameRequest is the body of POST /api/datasets/{dataset}/behaviours.
type NameRequest struct {
	Name    string   `json:"name"`
	Phrases []string `json:"phrases"`
}

// nameBehaviour answers POST /api/datasets/{dataset}/behaviours: the name
// becomes a behaviour of the dataset, its phrases a keyword rule; the
// steps they match are labelled with it, it is saved in the workspace, and
// every SAE on the dataset is analysed again (202 with the jobs).
func (s *Server) nameBehaviour(w http.ResponseWriter, r *http.Request) (any, error) {
	ds, err := s.dataset(r)
	if err != nil {
		return nil, err
	}
	var req NameRequest
	release, err := s.readJSON(w, r, maxNamedBytes, &req, "behaviour", `{"name": "verification", "phrases": ["let me verify"]}`)
	defer release()
	if err != nil {
		return nil, err
	}
	req.Name = strings.TrimSpace(req.Name)
	if err := checkName("behaviour", req.Name); err != nil {
		return nil, errorf(http.StatusBadRequest, "%v", err)
	}
	if len(req.Phrases) == 0 || len(req.Phrases) > maxPhrases {
		return nil, errorf(http.StatusBadRequest, "behaviour %s: phrases: expected 1 to %d, found %d", req.Name, maxPhrases, len(req.Phrases))
	}
	for i, p := range req.Phrases {
		if strings.TrimSpace(p) == "" || len(p) > maxPhraseLen {
			return nil, errorf(http.StatusBadRequest, "behaviour %s: phrases[%d]: expected 1 to %d bytes of text, found %q", req.Name, i, maxPhraseLen, clipText(p, 40))
		}
	}
	if ds.labels[req.Name] > 0 || req.Name == label.Other || slices.Contains(label.DefaultRules().Behaviours(), req.Name) {
		return nil, errorf(http.StatusConflict, "dataset %s already has a behaviour %q: pick another name", ds.Name, req.Name)
	}
	// Steps are relabelled in place: nothing may be reading them.
	var saes []*SAE
	for _, m := range s.ws.SAEs() {
		if m.Dataset != ds {
			continue
		}
		state, job, _, _, _ := m.snapshot()
		if state == SAETraining || state == SAEAnalysing {
			return nil, &apiError{status: http.StatusConflict, job: job, msg: fmt.Sprintf("SAE %s on dataset %s is %s; name the behaviour when job %s is done", m.Name, ds.Name, state, job)}
		}
		saes = append(saes, m)
	}
	s.namedMu.Lock()
	defer s.namedMu.Unlock()
	all, err := s.ws.readNamed()
	if err != nil {
		return nil, err
	}
	rules := append(slices.Clone(all[ds.Name]), label.Rule{Behaviour: req.Name, Phrases: req.Phrases})
	if err := rules.Validate(); err != nil {
		return nil, errorf(http.StatusBadRequest, "behaviour %s: %v", req.Name, err)
	}
	all[ds.Name] = rules
	if err := s.ws.writeNamed(all); err != nil {
		return nil, err
	}
	counts, err := ds.applyNamed(rules)
	if err != nil {
		return nil, err
	}
	s.sweeps.invalidate(ds.Name)
	jobs := []string{}
	for _, m := range saes {
		if state, _, _, sa, _ := m.snapshot(); sa != nil && state != SAEFailed && state != SAEInterrupted {
			jobs = append(jobs, s.StartAnalysis(m).ID)
		}
	}
	return accepted{map[string]any{"behaviour": req.Name, "steps": counts[req.Name], "jobs": jobs}}, nil
}

// namedList answers GET /api/datasets/{dataset}/behaviours: the
// behaviours named on the dataset, with their phrases.
func (s *Server) namedList(_ http.ResponseWriter, r *http.Request) (any, error) {
	ds, err := s.dataset(r)
	if err != nil {
		return nil, err
	}
	out := []NameRequest{}
	for _, rule := range ds.named {
		out = append(out, NameRequest{Name: rule.Behaviour, Phrases: rule.Phrases})
	}
	return map[string]any{"behaviours": out}, nil
}

// clipText shortens s to about n bytes for an error message.
func clipText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xc0 == 0x80 {
		n--
	}
	return s[:n] + "…"
}
