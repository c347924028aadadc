package web

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestLoad puts a bounded load on the server over loopback: 50 clients
// asking for feature pages as fast as they can and 50 websocket watchers
// following a training job, for RISE_LOAD_SECONDS (default 5; the hardening
// table's figure used 60). Every request must succeed; the p99 latency of
// the feature pages is logged.
func TestLoad(t *testing.T) {
	skipShort(t, "load test")
	secs := 5
	if v := os.Getenv("RISE_LOAD_SECONDS"); v != "" {
		fmt.Sscan(v, &secs)
	}
	ts := newTestServer(t)
	ts.trainReady(t, "loaded", 200)
	// A long training job for the watchers to follow.
	job := ts.train(t, "watched-long", 1_000_000)
	deadline := time.Now().Add(time.Duration(secs) * time.Second)

	var errs atomic.Int64
	var mu sync.Mutex
	var lat []time.Duration
	var wg sync.WaitGroup
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	for c := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(c), 1))
			var mine []time.Duration
			for time.Now().Before(deadline) {
				start := time.Now()
				resp, err := client.Get(fmt.Sprintf("%s/api/saes/loaded/features/%d", ts.URL, rng.IntN(128)))
				if err != nil {
					errs.Add(1)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					errs.Add(1)
				}
				mine = append(mine, time.Since(start))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	var events atomic.Int64
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := ts.dial(t, job, 0)
			defer c.Close()
			for time.Now().Before(deadline) {
				c.SetReadDeadline(deadline.Add(5 * time.Second))
				var m map[string]any
				if err := c.ReadJSON(&m); err != nil {
					if time.Now().Before(deadline) {
						errs.Add(1)
					}
					return
				}
				events.Add(1)
			}
		}()
	}
	wg.Wait()
	ts.send(t, "DELETE", "/api/jobs/"+job, "", nil)
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	if len(lat) == 0 {
		t.Fatal("no request finished")
	}
	p := func(q float64) time.Duration { return lat[min(len(lat)-1, int(q*float64(len(lat))))] }
	t.Logf("%d s: %d feature pages (p50 %v, p99 %v), %d websocket events to 50 watchers, %d errors",
		secs, len(lat), p(0.5).Round(time.Microsecond), p(0.99).Round(time.Microsecond), events.Load(), errs.Load())
	if errs.Load() != 0 {
		t.Errorf("%d errors under load", errs.Load())
	}
	if events.Load() < 50 {
		t.Errorf("the watchers saw %d events", events.Load())
	}
}
