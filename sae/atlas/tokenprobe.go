package atlas

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/rise-interp/rise/activations"
	"github.com/rise-interp/rise/activations/label"
	"github.com/rise-interp/rise/sae"
)

// A token probe asks how much of a behaviour feature's activation its
// trigger words alone explain. Features chosen by contrasting behaviour
// steps with the rest can be detectors of the very words the labels were
// given by ("Wait", "Alternatively"): a replication study cited in the
// project's issue "Results that survive a sceptical reviewer" found that
// 45–90% of contrast-chosen reasoning features fire on the injected
// trigger tokens alone. The probe measures, per feature,
//
//	ratio = mean activation on steps of other behaviours (or neutral steps)
//	        that carry the trigger
//	      / mean activation on true behaviour steps
//
// the trigger steps being made by writing the trigger at the head of such
// steps and running the model again (mode "injected"), or, without a
// model, found in a dump (mode "data"; the true steps are then those
// without the trigger when there are enough of them, so the ratio compares
// the word without the behaviour against the behaviour without the word).
// A feature with ratio at least DefaultTokenThreshold is flagged.
//
// The threshold: a feature that reads the behaviour fires on its steps and
// at its base rate elsewhere, so its ratio is about base/boosted (1/6 for
// the planted behaviour features of rise synth, whose boost is 6); a
// feature that reads only the word fires alike wherever the word is, ratio
// about 1 (injected) or far above 1 (data mode). 0.5 lies between: the
// trigger alone brings at least half of what the behaviour brings.

// Defaults of TokenProbeOptions.
const (
	DefaultTokenThreshold = 0.5
	DefaultTokenMinSteps  = 10
	// MaxTokenRatio caps a ratio whose true steps have no activation at
	// all (the feature fires only with the trigger).
	MaxTokenRatio = 1000
)

// Token probe modes.
const (
	TokenModeInjected = "injected"
	TokenModeData     = "data"
)

// TokenGroup says what a step is to a token probe.
type TokenGroup int8

// The groups of TokenTally.
const (
	TokenSkip            TokenGroup = iota // not counted
	TokenTrue                              // shows the behaviour, without its trigger
	TokenTrueWithTrigger                   // shows the behaviour and carries its trigger
	TokenTrigger                           // another behaviour's (or a neutral) step that carries the trigger
	TokenBaseline                          // another behaviour's step without the trigger
	numTokenGroups
)

// TokenProbeOptions configure a token probe.
type TokenProbeOptions struct {
	Behaviour string
	// Triggers are the behaviour's trigger phrases, matched as RISE's
	// keyword rules match (case-insensitive, whole words); nil means the
	// phrases of RISE's keyword rule for the behaviour (DefaultTriggers).
	Triggers []string
	// Threshold flags a feature whose ratio reaches it; 0 means
	// DefaultTokenThreshold.
	Threshold float64
	// MinSteps is the fewest steps a group needs; 0 means
	// DefaultTokenMinSteps.
	MinSteps int
	// BatchSize is the number of rows encoded at a time; 0 means
	// DefaultAttributionBatch.
	BatchSize int
}

// TokenScore is one feature's result.
type TokenScore struct {
	Feature  int     `json:"feature"`
	True     float64 `json:"true"`     // mean activation on the true behaviour steps
	Trigger  float64 `json:"trigger"`  // mean activation on the other steps with the trigger
	Baseline float64 `json:"baseline"` // mean activation on the other steps without it
	Ratio    float64 `json:"ratio"`    // Trigger / True, at most MaxTokenRatio
	Flagged  bool    `json:"flagged"`  // Ratio ≥ the threshold
}

// TokenProbe is the result of a token probe of a behaviour's features.
type TokenProbe struct {
	Behaviour string   `json:"behaviour"`
	Mode      string   `json:"mode"`
	Triggers  []string `json:"triggers"`
	Threshold float64  `json:"threshold"`
	// TrueSteps, TriggerSteps and BaselineSteps count the steps behind
	// each mean; TrueWithoutTrigger says whether the true steps are only
	// those without the trigger (data mode, when there are enough).
	TrueSteps          int          `json:"true_steps"`
	TriggerSteps       int          `json:"trigger_steps"`
	BaselineSteps      int          `json:"baseline_steps"`
	TrueWithoutTrigger bool         `json:"true_without_trigger"`
	Features           []TokenScore `json:"features,omitempty"`
	// Flagged counts the flagged features.
	Flagged int `json:"flagged"`
	// KeptInVector says whether the flagged features were kept in the
	// behaviour's vector when the probe was recorded in an atlas.
	KeptInVector bool `json:"kept_in_vector"`
}

// TokenFlag is a token probe's verdict on one feature, as atlas.json keeps
// it.
type TokenFlag struct {
	Behaviour string  `json:"behaviour"`
	Mode      string  `json:"mode"`
	Ratio     float64 `json:"ratio"`
	Threshold float64 `json:"threshold"`
	Flagged   bool    `json:"flagged"`
	// LeftOut says whether the feature is left out of the behaviour's
	// vector (flagged, and not kept on request).
	LeftOut bool `json:"left_out"`
}

// DefaultTriggers returns the phrases of RISE's keyword rule for a
// behaviour (detect), and the phrase a probe writes at the head of a step
// (inject): "Wait" for reflection and "Alternatively" for backtracking, the
// triggers the replication study injected, or the rule's first phrase,
// capitalised. ok is false for a behaviour the rules do not name.
func DefaultTriggers(behaviour string) (detect []string, inject string, ok bool) {
	for _, r := range label.DefaultRules() {
		if r.Behaviour != behaviour {
			continue
		}
		switch behaviour {
		case label.Reflection:
			inject = "Wait"
		case label.Backtracking:
			inject = "Alternatively"
		default:
			inject = capitalise(r.Phrases[0])
		}
		return slices.Clone(r.Phrases), inject, true
	}
	return nil, "", false
}

func capitalise(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	return string(unicode.ToUpper(r)) + s[n:]
}

// InjectTrigger writes a trigger phrase at the head of a step's text:
// "Wait, the total grows ...".
func InjectTrigger(trigger, text string) string {
	r, n := utf8.DecodeRuneInString(text)
	if n > 0 && unicode.IsUpper(r) {
		if r2, _ := utf8.DecodeRuneInString(text[n:]); !unicode.IsUpper(r2) {
			text = string(unicode.ToLower(r)) + text[n:]
		}
	}
	return trigger + ", " + text
}

// TriggerMatcher returns a matcher that labels a text with behaviour when
// it carries one of the phrases (RISE's keyword-rule matching).
func TriggerMatcher(behaviour string, phrases []string) (*label.Matcher, error) {
	m, err := label.Rules{{Behaviour: behaviour, Phrases: phrases}}.Compile()
	if err != nil {
		return nil, fmt.Errorf("token probe: triggers of %q: %w", behaviour, err)
	}
	return m, nil
}

// HasTrigger reports whether a trigger matcher finds its phrases in text.
func HasTrigger(m *label.Matcher, text string) bool {
	return m.Labels(text)[0] != label.Other
}

// TokenTally accumulates the mean activations of some features over the
// groups of a token probe.
type TokenTally struct {
	s        *sae.SAE
	features []int
	sum      [numTokenGroups][]float64
	n        [numTokenGroups]int
	xc, f    []float32
}

// NewTokenTally starts a tally of the given features of s. It fails for a
// feature outside the SAE.
func NewTokenTally(s *sae.SAE, features []int) (*TokenTally, error) {
	if s == nil {
		return nil, errors.New("token probe: no SAE given")
	}
	for _, j := range features {
		if j < 0 || j >= s.DSae {
			return nil, fmt.Errorf("token probe: feature %d: expected 0 to %d (the SAE's d_sae is %d)", j, s.DSae-1, s.DSae)
		}
	}
	t := &TokenTally{s: s, features: slices.Clone(features)}
	for g := range t.sum {
		t.sum[g] = make([]float64, len(features))
	}
	return t, nil
}

// Add encodes the rows x (len(groups) rows of the SAE's width) and adds
// each to its group.
func (t *TokenTally) Add(x []float32, groups []TokenGroup) {
	n, d, m := len(groups), t.s.DIn, t.s.DSae
	if len(x) != n*d {
		panic(fmt.Sprintf("atlas: TokenTally.Add: %d values for %d rows of %d", len(x), n, d))
	}
	if cap(t.f) < n*m {
		t.xc, t.f = make([]float32, n*d), make([]float32, n*m)
	}
	xc, f := t.xc[:n*d], t.f[:n*m]
	t.s.PreActivations(x, xc, f)
	t.s.Activate(f)
	for i, g := range groups {
		if g <= TokenSkip || g >= numTokenGroups {
			continue
		}
		t.n[g]++
		row := f[i*m : (i+1)*m]
		for k, j := range t.features {
			t.sum[g][k] += float64(row[j])
		}
	}
}

// Count is the number of rows added to a group.
func (t *TokenTally) Count(g TokenGroup) int { return t.n[g] }

// Probe scores the features. The true steps are those without the trigger
// when trueWithout is set, otherwise all the behaviour's steps. It fails
// when the true or the trigger steps number fewer than opts.MinSteps.
func (t *TokenTally) Probe(mode string, triggers []string, trueWithout bool, opts TokenProbeOptions) (*TokenProbe, error) {
	thr := cmp.Or(opts.Threshold, DefaultTokenThreshold)
	minSteps := cmp.Or(opts.MinSteps, DefaultTokenMinSteps)
	if !(thr > 0) || math.IsInf(thr, 0) {
		return nil, fmt.Errorf("token probe: threshold must be a positive number, got %v", opts.Threshold)
	}
	trueN := t.n[TokenTrue]
	if !trueWithout {
		trueN += t.n[TokenTrueWithTrigger]
	}
	if err := checkTokenCounts(mode, triggers, trueWithout, trueN, t.n[TokenTrigger], opts.Behaviour, minSteps); err != nil {
		return nil, err
	}
	p := &TokenProbe{Behaviour: opts.Behaviour, Mode: mode, Triggers: slices.Clone(triggers), Threshold: thr,
		TrueSteps: trueN, TriggerSteps: t.n[TokenTrigger], BaselineSteps: t.n[TokenBaseline], TrueWithoutTrigger: trueWithout,
		Features: make([]TokenScore, len(t.features))}
	mean := func(g TokenGroup, k int) float64 {
		if t.n[g] == 0 {
			return 0
		}
		return t.sum[g][k] / float64(t.n[g])
	}
	for k, j := range t.features {
		sc := TokenScore{Feature: j, Trigger: mean(TokenTrigger, k), Baseline: mean(TokenBaseline, k)}
		if trueWithout {
			sc.True = mean(TokenTrue, k)
		} else {
			sc.True = (t.sum[TokenTrue][k] + t.sum[TokenTrueWithTrigger][k]) / float64(trueN)
		}
		switch {
		case sc.True > 0:
			sc.Ratio = min(sc.Trigger/sc.True, MaxTokenRatio)
		case sc.Trigger > 0:
			sc.Ratio = MaxTokenRatio
		}
		sc.Flagged = sc.Ratio >= thr
		if sc.Flagged {
			p.Flagged++
		}
		p.Features[k] = sc
	}
	return p, nil
}

// checkTokenCounts checks that both sides of the ratio have enough steps.
func checkTokenCounts(mode string, triggers []string, trueWithout bool, trueN, trigN int, behaviour string, minSteps int) error {
	quoted := quoteAll(triggers)
	switch {
	case trueN < minSteps:
		return fmt.Errorf("token probe: expected at least %d steps labelled %s%s, found %d", minSteps, behaviour, map[bool]string{true: " without a trigger", false: ""}[trueWithout], trueN)
	case trigN < minSteps && mode == TokenModeData:
		return fmt.Errorf("token probe: expected at least %d steps not labelled %s whose text carries a trigger (%s), found %d; with keyword labels no such step exists, so inject the triggers with a model (--model)", minSteps, behaviour, quoted, trigN)
	case trigN < minSteps:
		return fmt.Errorf("token probe: expected at least %d steps not labelled %s to inject %s into, found %d", minSteps, behaviour, quoted, trigN)
	}
	return nil
}

func quoteAll(s []string) string {
	q := make([]string, len(s))
	for i, x := range s {
		q[i] = fmt.Sprintf("%q", x)
	}
	return strings.Join(q, ", ")
}

// ProbeTokensData is the token probe of a dump without a model: it
// compares the features' activations on steps not labelled with the
// behaviour whose text carries a trigger against those on the behaviour's
// steps without one (all its steps, when fewer than opts.MinSteps lack the
// trigger). features are the columns to probe (the behaviour's specific
// columns of an atlas). It reads the layer once.
func ProbeTokensData(ctx context.Context, s *sae.SAE, layer *activations.Layer, steps []activations.Step, features []int, opts TokenProbeOptions) (*TokenProbe, error) {
	if err := checkEncodeInput("token probe", s, layer, steps); err != nil {
		return nil, err
	}
	if opts.Behaviour == "" {
		return nil, errors.New("token probe: no behaviour given")
	}
	if opts.BatchSize < 0 {
		return nil, fmt.Errorf("token probe: batch size must be positive (or 0 for the default), got %d", opts.BatchSize)
	}
	triggers := opts.Triggers
	if len(triggers) == 0 {
		d, _, ok := DefaultTriggers(opts.Behaviour)
		if !ok {
			return nil, fmt.Errorf("token probe: behaviour %q has no keyword rule; give its trigger phrases", opts.Behaviour)
		}
		triggers = d
	}
	m, err := TriggerMatcher(opts.Behaviour, triggers)
	if err != nil {
		return nil, err
	}
	tally, err := NewTokenTally(s, features)
	if err != nil {
		return nil, err
	}
	groups := make([]TokenGroup, len(steps))
	var count [numTokenGroups]int
	for i := range steps {
		b, trig := steps[i].HasLabel(opts.Behaviour), HasTrigger(m, steps[i].Text)
		switch {
		case b && !trig:
			groups[i] = TokenTrue
		case b:
			groups[i] = TokenTrueWithTrigger
		case trig:
			groups[i] = TokenTrigger
		default:
			groups[i] = TokenBaseline
		}
		count[groups[i]]++
	}
	// Too few steps on either side is an error before the layer is read.
	minSteps := cmp.Or(opts.MinSteps, DefaultTokenMinSteps)
	trueWithout := count[TokenTrue] >= minSteps
	trueN := count[TokenTrue]
	if !trueWithout {
		trueN += count[TokenTrueWithTrigger]
	}
	if err := checkTokenCounts(TokenModeData, triggers, trueWithout, trueN, count[TokenTrigger], opts.Behaviour, minSteps); err != nil {
		return nil, err
	}
	it := layer.Batches(activations.BatchOptions{Size: cmp.Or(opts.BatchSize, DefaultAttributionBatch)})
	var g []TokenGroup
	for it.Next(ctx) {
		g = g[:0]
		for _, row := range it.Rows() {
			g = append(g, groups[row])
		}
		tally.Add(it.X(), g)
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("token probe: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("token probe: %w", err)
	}
	return tally.Probe(TokenModeData, triggers, trueWithout, opts)
}

// RecordTokenProbe writes a token probe's verdicts into the atlas: each
// probed feature's TokenFlag, the probe in TokenProbes, the flagged columns
// of the behaviour in its TokenColumns, and, unless keep is set, the
// behaviour's vector rebuilt from its columns without the flagged ones
// (the vector with them stays in VectorWithTokens). s must be the SAE the
// atlas was built from.
func (a *Atlas) RecordTokenProbe(s *sae.SAE, p *TokenProbe, keep bool) error {
	info, ok := a.Behaviours[p.Behaviour]
	if !ok {
		return fmt.Errorf("atlas: no behaviour %q to record a token probe for", p.Behaviour)
	}
	if s.DSae != a.DSae || s.DIn != a.DIn {
		return fmt.Errorf("atlas: the SAE has d_in %d and d_sae %d, the atlas %d and %d", s.DIn, s.DSae, a.DIn, a.DSae)
	}
	flagged := map[int]bool{}
	for _, sc := range p.Features {
		if sc.Feature < 0 || sc.Feature >= len(a.Features) {
			return fmt.Errorf("atlas: token probe of feature %d: expected 0 to %d", sc.Feature, len(a.Features)-1)
		}
		a.Features[sc.Feature].Token = &TokenFlag{Behaviour: p.Behaviour, Mode: p.Mode, Ratio: sc.Ratio, Threshold: p.Threshold,
			Flagged: sc.Flagged, LeftOut: sc.Flagged && !keep && slices.Contains(info.Columns, sc.Feature)}
		if sc.Flagged {
			flagged[sc.Feature] = true
		}
	}
	info.TokenColumns = []int{}
	var kept []int
	for _, j := range info.Columns {
		if flagged[j] {
			info.TokenColumns = append(info.TokenColumns, j)
		} else {
			kept = append(kept, j)
		}
	}
	// The vector over all the columns, as Build made it.
	full := info.VectorWithTokens
	if full == nil {
		full = info.Vector
	}
	info.VectorWithTokens = nil
	switch {
	case keep || len(info.TokenColumns) == 0:
		info.Vector = full
	case len(kept) == 0:
		info.VectorWithTokens, info.Vector = full, nil
		info.Error = fmt.Sprintf("every one of the %d columns specific to %q was flagged as seeing only its trigger tokens (rise probe-tokens; --keep-token-features keeps them)", len(info.Columns), p.Behaviour)
	default:
		v, err := MeanDirection(s, kept)
		if err != nil {
			return fmt.Errorf("atlas: behaviour %q: %w", p.Behaviour, err)
		}
		info.VectorWithTokens, info.Vector = full, v
	}
	a.Behaviours[p.Behaviour] = info
	sum := *p
	sum.Features = nil
	sum.KeptInVector = keep
	if a.TokenProbes == nil {
		a.TokenProbes = map[string]*TokenProbe{}
	}
	a.TokenProbes[p.Behaviour] = &sum
	return nil
}
