// Package browsertest starts Debian's chromium, headless, for the browser
// tests of the workbench, the report and the dashboard. Only tests import
// it.
package browsertest

import (
	"context"
	"os"
	"os/exec"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// Chromium finds Debian's chromium. A test skips without it, except under
// CI (CI set), where .ci/run installs it and its absence is a failure.
func Chromium(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("no chromium on PATH: .ci/run installs Debian's chromium for the browser tests")
	}
	t.Skip("no chromium on PATH (apt-get install chromium): browser test skipped")
	return ""
}

// New starts chromium with a window of width × height and returns a tab
// that ends with the test or after timeout; flags are added to the
// defaults.
func New(t testing.TB, timeout time.Duration, width, height int, flags ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(Chromium(t)), chromedp.NoSandbox, chromedp.WindowSize(width, height),
		chromedp.Flag("disable-gpu", true))
	opts = append(opts, flags...)
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	ctx, cancel2 := chromedp.NewContext(actx)
	t.Cleanup(cancel2)
	ctx, cancel3 := context.WithTimeout(ctx, timeout)
	t.Cleanup(cancel3)
	return ctx
}

// A Watcher records what a tab asks for and reports: its network
// requests, its log entries (a blocked request logs a
// Content-Security-Policy violation) and its uncaught exceptions.
type Watcher struct {
	mu                         sync.Mutex
	requests, logs, exceptions []string
}

// Watch starts recording the tab's requests, log entries and exceptions.
func Watch(t testing.TB, ctx context.Context) *Watcher {
	t.Helper()
	w := &Watcher{}
	chromedp.ListenTarget(ctx, func(ev any) {
		w.mu.Lock()
		defer w.mu.Unlock()
		switch e := ev.(type) {
		case *network.EventRequestWillBeSent:
			w.requests = append(w.requests, e.Request.URL)
		case *log.EventEntryAdded:
			w.logs = append(w.logs, e.Entry.Text)
		case *runtime.EventExceptionThrown:
			w.exceptions = append(w.exceptions, e.ExceptionDetails.Error())
		}
	})
	if err := chromedp.Run(ctx, network.Enable(), log.Enable()); err != nil {
		t.Fatalf("watching the tab: %v", err)
	}
	return w
}

// Reset forgets what was recorded.
func (w *Watcher) Reset() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.requests, w.logs, w.exceptions = nil, nil, nil
}

// Requests, Logs and Exceptions return what was recorded since the last
// Reset.
func (w *Watcher) Requests() []string   { return w.get(&w.requests) }
func (w *Watcher) Logs() []string       { return w.get(&w.logs) }
func (w *Watcher) Exceptions() []string { return w.get(&w.exceptions) }

func (w *Watcher) get(s *[]string) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(*s)
}
