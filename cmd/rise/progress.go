package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// progressBar draws a one-line bar on a terminal. On anything else (a pipe,
// a file, a test) it draws nothing, so logs stay clean.
type progressBar struct {
	w     io.Writer
	label string
	start time.Time
	mu    sync.Mutex
	last  time.Time
	drawn bool
}

// newProgress returns a bar on w when w is a terminal, and nil otherwise.
// A nil bar's methods do nothing.
func newProgress(w io.Writer, label string) *progressBar {
	f, ok := w.(*os.File)
	if !ok {
		return nil
	}
	st, err := f.Stat()
	if err != nil || st.Mode()&os.ModeCharDevice == 0 {
		return nil
	}
	return &progressBar{w: w, label: label, start: time.Now()}
}

// update redraws the bar at most ten times a second; it is safe for
// concurrent use and has the signature packages take for progress.
func (p *progressBar) update(done, total int64) { p.updateInfo(done, total, "") }

// updateInfo is update with a status text (loss figures, say) after the bar.
func (p *progressBar) updateInfo(done, total int64, info string) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	if now.Sub(p.last) < 100*time.Millisecond && done < total {
		return
	}
	p.last = now
	const width = 30
	frac := 0.0
	if total > 0 {
		frac = min(1, float64(done)/float64(total))
	}
	fill := int(frac * width)
	eta := ""
	if el := now.Sub(p.start); frac > 0.01 && frac < 1 {
		eta = " eta " + (time.Duration(float64(el)/frac) - el).Round(time.Second).String()
	}
	if info != "" {
		info = " " + info
	}
	fmt.Fprintf(p.w, "\r%s [%s%s] %3.0f%% %d/%d%s%s\x1b[K", p.label, strings.Repeat("=", fill), strings.Repeat(" ", width-fill), 100*frac, done, total, info, eta)
	p.drawn = true
}

// done clears the bar's line.
func (p *progressBar) done() {
	if p == nil || !p.drawn {
		return
	}
	fmt.Fprint(p.w, "\r\x1b[K")
}

// progressFunc returns p.update, or nil for a nil bar.
func (p *progressBar) progressFunc() func(done, total int64) {
	if p == nil {
		return nil
	}
	return p.update
}
