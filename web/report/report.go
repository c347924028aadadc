// Package report makes the one file a researcher attaches to a paper or an
// issue: a self-contained HTML page (figures inline as SVG, no script, no
// request to any server) and its Markdown twin, with the dataset's summary,
// each SAE's metrics and training curve, the atlas maps, the separation of
// behaviours by layer, the behaviour vectors and their cosines, each
// steering sweep with its controls, bootstrap intervals and p-values, the
// confidence vectors, and the commands, versions and seeds behind every
// number. The same inputs give the same bytes: the report holds no clock.
package report

import (
	"context"
	"errors"
	"fmt"
	"runtime"

	"github.com/rise-interp/rise/activations"
	"github.com/rise-interp/rise/internal/inputerr"
	"github.com/rise-interp/rise/sae"
	"github.com/rise-interp/rise/sae/atlas"
)

// DefaultEvalRows is the number of rows of its layer on which each SAE's
// metrics are measured unless Inputs.EvalRows says otherwise.
const DefaultEvalRows = 8192

// Inputs are what a report is made of. Data is required; every other part
// is shown when given.
type Inputs struct {
	// Data is the activation dump (rise-activations/1 directory, .npy or
	// .npz) the SAEs were trained on.
	Data string
	// SAEs are SAE directories (or files sae.LoadAny reads); each is
	// measured on its hook layer of Data.
	SAEs []string
	// Model is the language model the dump and the sweeps came from; the
	// report records its files' sizes and SHA-256 digests.
	Model string
	// Atlases are atlas.json files (rise atlas) ...
	Atlases []string
	// ... and NamedAtlases atlases already in memory (the workbench's),
	// shown after them.
	NamedAtlases []NamedAtlas
	// Sweep is a sweep.json (rise atlas --sweep), or SweepValue one in
	// memory; at most one of the two.
	Sweep      string
	SweepValue *Sweep
	// Steer are results.json files of rise steer, and SteerValues sweeps
	// in memory (the workbench's), shown after them.
	Steer       []string
	SteerValues []NamedSteering
	// Confidence are conf.json files of rise confidence.
	Confidence []string

	// Command is the command line (or request) that made the report; it is
	// printed as the first of the commands that reproduce it.
	Command string
	// Version is rise's version line (rise version).
	Version string
	// EvalRows is the number of rows each SAE is measured on (0:
	// DefaultEvalRows).
	EvalRows int
	// Progress, when not nil, is told each stage of the work.
	Progress func(stage string, done, total int)
}

// NamedAtlas is an atlas with the name the report gives it (its file, or
// the workbench's SAE).
type NamedAtlas struct {
	Name string
	// SAE is the SAE it was built from, when known.
	SAE   string
	Atlas *atlas.Atlas
}

// NamedSteering is a steering sweep with the name the report gives it and
// the request that made it.
type NamedSteering struct {
	Name     string
	Command  string
	Steering *Steering
}

// Report is a made report, ready to be written as HTML or Markdown.
type Report struct {
	Title    string
	sections []section
	figures  int
}

// Figures returns the number of figures the report draws.
func (r *Report) Figures() int { return r.figures }

// Build reads the inputs, measures the SAEs and draws the figures. Bad
// inputs are errors that name the file and the field; cancelling ctx stops
// the work between files and batches.
func Build(ctx context.Context, in Inputs) (*Report, error) {
	if in.Data == "" {
		return nil, inputerr.Errorf("report: expected the activation dump the SAEs were trained on, found none")
	}
	if in.Sweep != "" && in.SweepValue != nil {
		return nil, errors.New("report: both a sweep file and a sweep in memory were given")
	}
	if in.EvalRows < 0 {
		return nil, inputerr.Errorf("report: rows to evaluate each SAE on: expected a positive count (0: %d), found %d", DefaultEvalRows, in.EvalRows)
	}
	if in.EvalRows == 0 {
		in.EvalRows = DefaultEvalRows
	}
	b := &builder{ctx: ctx, in: in, r: &Report{Title: "rise report"}}
	err := b.build()
	if b.dump != nil {
		b.dump.Close()
	}
	if err != nil {
		return nil, err
	}
	return b.r, nil
}

// builder gathers a report's sections, and what reproduces them, in order.
type builder struct {
	ctx context.Context
	in  Inputs
	r   *Report

	files    [][]string // role, path, bytes, SHA-256
	commands []command
	seeds    [][]string // what, seed
	atlases  []NamedAtlas
	saes     []saeRef
	records  []named // training records of the SAEs, in order
	dump     *activations.Dump
	hashErr  error // the first file that could not be read for its digest
}

// command is a command line that reproduces part of the report, with what
// the files it comes from do not record.
type command struct {
	what, line, note string
}

// saeRef is an SAE of the report, for pairing atlases with SAEs.
type saeRef struct {
	path        string
	dIn, dSae   int
	layer, rows int
	sae         *sae.SAE
}

func (b *builder) progress(stage string, done, total int) {
	if b.in.Progress != nil {
		b.in.Progress(stage, done, total)
	}
}

func (b *builder) build() error {
	steps := []struct {
		name string
		run  func() error
	}{
		{"dataset", b.dataset},
		{"SAEs", b.saeSections},
		{"atlases", b.atlasSections},
		{"separation", b.separation},
		{"vectors", b.vectors},
		{"steering", b.steering},
		{"confidence", b.confidence},
		{"model", b.model},
	}
	for i, s := range steps {
		if err := b.ctx.Err(); err != nil {
			return err
		}
		b.progress(s.name, i, len(steps))
		if err := s.run(); err != nil {
			return err
		}
		if b.hashErr != nil {
			return b.hashErr
		}
	}
	b.progress("done", len(steps), len(steps))
	b.reproduce()
	return nil
}

// reproduce adds the last section: versions, commands, seeds and inputs.
func (b *builder) reproduce() {
	s := section{id: "reproduce", title: "How to reproduce these numbers"}
	s.add(table{head: []string{"", ""}, rows: [][]string{
		{"rise", orDash(b.in.Version)},
		{"Go", runtime.Version()},
	}, caption: "Versions"})
	var lines []string
	if b.in.Command != "" {
		lines = append(lines, "# this report", b.in.Command)
	}
	for _, c := range b.commands {
		lines = append(lines, "# "+c.what)
		if c.note != "" {
			lines = append(lines, "# ("+c.note+")")
		}
		lines = append(lines, c.line)
	}
	if len(lines) > 0 {
		s.add(para{"The commands below are rebuilt from what each input file records; a flag a file does not record is named in capitals, or left at its default, as the comment above it says."})
		s.add(code{lines})
	}
	if len(b.seeds) > 0 {
		s.add(table{caption: "Seeds", head: []string{"what", "seed"}, rows: b.seeds})
	}
	if len(b.files) > 0 {
		s.add(table{caption: "Input files (SHA-256 of their bytes)", head: []string{"role", "file", "bytes", "SHA-256"}, rows: b.files, mono: []int{1, 3}})
	}
	b.r.sections = append(b.r.sections, s)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// fig numbers a figure.
func (b *builder) fig(kind, caption string, svg []byte) figure {
	b.r.figures++
	return figure{n: b.r.figures, kind: kind, caption: caption, svg: svg}
}

// wrap adds the file to an error that does not name it.
func wrap(path string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", path, err)
}
