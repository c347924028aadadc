package dashboard

import (
	"bytes"
	_ "embed"
	"fmt"
	"html/template"
	"math"
	"strings"
)

//go:embed page.html.tmpl
var pageTemplate string

// HTMLOptions describe the page WriteHTML renders.
type HTMLOptions struct {
	Title     string // default "rise feature dashboard"
	SAE, Data string // where the SAE and the steps came from, for the record
	Delimiter string // the step delimiter (default "\n\n")
}

// The page's view of a report.
type pageView struct {
	Title, SAE, Data string
	Rep              *Report
	Features         []featureView
	HeldOut          string
}

type featureView struct {
	Feature
	Hist        histView
	Description string
	Note        string
	TopX        []exampleView
	Bands       []bandView
}

type bandView struct {
	Lo, Hi   float32
	Share    float64 // of the feature's firings
	Examples []exampleView
}

type exampleView struct {
	Example
	Style     template.CSS // the delimiter mark's colour, by value / max
	PrevStyle template.CSS
	Labels    string
}

type histView struct {
	Width, Height float64
	Bars          []barView
	MaxCount      int64
	Max           float32
}

type barView struct {
	X, Y, W, H float64
	Title      string
}

// WriteHTML renders rep as one self-contained HTML page: styles inline,
// the histograms as inline SVG, no scripts, fonts or images fetched from
// anywhere, so the file opens from disk in any browser.
func WriteHTML(rep *Report, opts HTMLOptions) ([]byte, error) {
	if opts.Title == "" {
		opts.Title = "rise feature dashboard"
	}
	if opts.Delimiter == "" {
		opts.Delimiter = DefaultDelimiter
	}
	t, err := template.New("page").Funcs(template.FuncMap{
		"pct": func(v float64) string { return fmt.Sprintf("%.3g%%", 100*v) },
		"f3":  func(v any) string { return fmt.Sprintf("%.3g", v) },
		"delim": func() string {
			return strings.ReplaceAll(opts.Delimiter, "\n", "⏎")
		},
	}).Parse(pageTemplate)
	if err != nil {
		return nil, err
	}
	v := pageView{Title: opts.Title, SAE: opts.SAE, Data: opts.Data, Rep: rep}
	switch {
	case rep.HoldOut < 0:
		v.HeldOut = "the steps the phrases came from"
	default:
		v.HeldOut = fmt.Sprintf("the held-out traces (%.0f%% of them)", 100*rep.HoldOut)
	}
	for _, f := range rep.Features {
		fv := featureView{Feature: f, Hist: histogram(f), Description: Description(f), Note: DetectionNote(f, rep.HoldOut)}
		for _, x := range f.Top {
			fv.TopX = append(fv.TopX, exampleOf(x, f.Max))
		}
		for b := range rep.Bands {
			bv := bandView{Lo: f.Max * float32(b) / float32(rep.Bands), Hi: f.Max * float32(b+1) / float32(rep.Bands)}
			if f.Fires > 0 {
				bv.Share = float64(f.BandFires[b]) / float64(f.Fires)
			}
			for _, x := range f.Banded {
				if x.Band == b {
					bv.Examples = append(bv.Examples, exampleOf(x, f.Max))
				}
			}
			fv.Bands = append(fv.Bands, bv)
		}
		v.Features = append(v.Features, fv)
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// shade colours a delimiter mark by the value's share of the feature's
// maximum.
func shade(v, hi float32) template.CSS {
	a := 0.0
	if hi > 0 && v > 0 {
		a = math.Min(1, float64(v/hi))
	}
	return template.CSS(fmt.Sprintf("background: rgba(230, 110, 0, %.3f)", 0.12+0.88*a))
}

func exampleOf(x Example, hi float32) exampleView {
	return exampleView{Example: x, Style: shade(x.Value, hi), PrevStyle: shade(x.PrevValue, hi), Labels: strings.Join(x.Step.Labels, ", ")}
}

// histogram lays the feature's density histogram out as SVG bars.
func histogram(f Feature) histView {
	h := histView{Width: 360, Height: 90, Max: f.Max}
	for _, c := range f.Hist {
		h.MaxCount = max(h.MaxCount, c)
	}
	if h.MaxCount == 0 || len(f.Hist) == 0 {
		return h
	}
	w := h.Width / float64(len(f.Hist))
	for i, c := range f.Hist {
		bh := h.Height * float64(c) / float64(h.MaxCount)
		lo := float64(f.Max) * float64(i) / float64(len(f.Hist))
		hi := float64(f.Max) * float64(i+1) / float64(len(f.Hist))
		h.Bars = append(h.Bars, barView{X: float64(i) * w, Y: h.Height - bh, W: math.Max(w-1, 1), H: bh,
			Title: fmt.Sprintf("(%.3g, %.3g]: %d steps", lo, hi, c)})
	}
	return h
}
