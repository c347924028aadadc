package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestServeCommand starts rise serve on a free loopback port, reads its
// address from stdout, asks the API for the dataset it was given, checks
// that it answers its --allow-host name but no other, and stops it by
// cancelling its context, as Ctrl-C does.
func TestServeCommand(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	var errb strings.Builder
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--data", tinyDump, "--work", filepath.Join(t.TempDir(), "work"), "--addr", "127.0.0.1:0",
			"--allow-host", "tunnel.example", "--jobs", "train=2"}, pw, &errb)
		pw.Close()
	}()
	sc := bufio.NewScanner(pr)
	var url string
	for sc.Scan() {
		if u, ok := strings.CutPrefix(sc.Text(), "rise workbench: "); ok {
			url = u
			break
		}
	}
	go io.Copy(io.Discard, pr)
	if !strings.HasPrefix(url, "http://127.0.0.1:") {
		t.Fatalf("serve printed no loopback address (%q); stderr: %s", url, errb.String())
	}
	resp, err := http.Get(url + "api/datasets")
	if err != nil {
		t.Fatal(err)
	}
	var dss []struct {
		Name string `json:"name"`
		Rows int    `json:"rows"`
	}
	json.NewDecoder(resp.Body).Decode(&dss)
	resp.Body.Close()
	if len(dss) != 1 || dss[0].Name != "tiny" || dss[0].Rows != 400 {
		t.Errorf("datasets: %+v", dss)
	}
	for host, want := range map[string]int{"tunnel.example:9000": 200, "attacker.example": 421} {
		req, _ := http.NewRequest("GET", url+"api/status", nil)
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("Host %s: %d, want %d", host, resp.StatusCode, want)
		}
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("serve exited %d after Ctrl-C: %s", code, errb.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not stop within 10 s of Ctrl-C")
	}

	if code, _, stderr := runRise(t, "serve", "--data", tinyDump, "--addr", ":0"); code != 2 || !strings.Contains(stderr, "no host") {
		t.Errorf("--addr :0: exit %d, %q; want a usage error about the missing host", code, stderr)
	}
	if code, _, stderr := runRise(t, "serve", "--data", tinyDump, "--jobs", "train=many"); code != 2 || !strings.Contains(stderr, "train=many") {
		t.Errorf("--jobs train=many: exit %d, %q; want a usage error naming it", code, stderr)
	}
	if code, _, stderr := runRise(t, "serve", "--data", filepath.Join(t.TempDir(), "nope")); code != 1 || !strings.Contains(stderr, "nope") {
		t.Errorf("missing dump: exit %d, %q", code, stderr)
	}
}

func TestServeNeedsTokenOffLoopback(t *testing.T) {
	if code, _, stderr := runRise(t, "serve", "--data", tinyDump, "--addr", "0.0.0.0:0"); code != 2 || !strings.Contains(stderr, "--token") {
		t.Errorf("serve on 0.0.0.0 without a token: exit %d, %s", code, stderr)
	}
	if code, _, stderr := runRise(t, "backend", "--model", "x.bin", "--addr", "0.0.0.0:0"); code != 2 || !strings.Contains(stderr, "--token") {
		t.Errorf("backend on 0.0.0.0 without a token: exit %d, %s", code, stderr)
	}
}

// TestBrokenDumpEverywhere gives a dump with a truncated shard to every
// command that reads dumps: each refuses it with exit status 1 and an error
// that names the shard.
func TestBrokenDumpEverywhere(t *testing.T) {
	dir := t.TempDir()
	dump, saeDir := synthAndTrain(t, dir, []string{"--rows", "300", "--d-model", "16", "--features", "32"},
		[]string{"--arch", "topk", "--k", "4", "--width", "32", "--steps", "20"})
	shards, _ := filepath.Glob(filepath.Join(dump, "*.npy"))
	var shard string
	for _, s := range shards {
		if filepath.Base(s) != "truth.npy" && filepath.Base(s) != "offset.npy" {
			shard = s
		}
	}
	b, _ := os.ReadFile(shard)
	os.WriteFile(shard, b[:len(b)-100], 0o644)
	for _, args := range [][]string{
		{"inspect", dump},
		{"train", "--data", dump, "--arch", "topk", "--k", "4", "--width", "32", "--steps", "5", "--out", filepath.Join(dir, "s2")},
		{"eval", "--data", dump, "--sae", saeDir},
		{"atlas", "--data", dump, "--sae", saeDir, "--out", filepath.Join(dir, "a.json")},
		{"serve", "--data", dump, "--addr", "127.0.0.1:0"},
	} {
		code, _, stderr := runRise(t, args...)
		if code != 1 || !strings.Contains(stderr, filepath.Base(shard)) || strings.Count(strings.TrimSpace(stderr), "\n") > 0 {
			t.Errorf("rise %s on a truncated shard: exit %d, %q; want 1 and one line naming %s", args[0], code, stderr, filepath.Base(shard))
		}
	}
}

// TestBrokenSAEEverywhere: a truncated sae_weights.safetensors and a
// cfg.json that contradicts the weights are refused by eval, atlas, serve
// and a steering spec, with exit status 1 and the file named.
func TestBrokenSAEEverywhere(t *testing.T) {
	dir := t.TempDir()
	saeDir := filepath.Join(dir, "s")
	mustRise(t, "train", "--data", tinyDump, "--arch", "topk", "--k", "4", "--width", "32", "--steps", "20", "--out", saeDir)
	w := filepath.Join(saeDir, "sae_weights.safetensors")
	good, _ := os.ReadFile(w)
	cfg := filepath.Join(saeDir, "cfg.json")
	goodCfg, _ := os.ReadFile(cfg)
	spec := filepath.Join(dir, "spec.json")
	os.WriteFile(spec, []byte(`{"vectors": [{"source": "sae:`+saeDir+`#1", "layer": 0}]}`), 0o644)
	for _, damage := range []struct {
		name, file string
		apply      func()
	}{
		{"truncated weights", "sae_weights.safetensors", func() { os.WriteFile(w, good[:len(good)/2], 0o644) }},
		{"cfg.json of another width", "cfg.json", func() {
			os.WriteFile(cfg, []byte(strings.Replace(string(goodCfg), `"d_sae": 32`, `"d_sae": 64`, 1)), 0o644)
		}},
	} {
		os.WriteFile(w, good, 0o644)
		os.WriteFile(cfg, goodCfg, 0o644)
		damage.apply()
		for _, args := range [][]string{
			{"eval", "--data", tinyDump, "--sae", saeDir},
			{"atlas", "--data", tinyDump, "--sae", saeDir, "--out", filepath.Join(dir, "a.json")},
			{"serve", "--data", tinyDump, "--sae", saeDir, "--addr", "127.0.0.1:0"},
			{"export", "--steer", spec, "--format", "npy", "--out", filepath.Join(dir, "v.npy")},
		} {
			code, _, stderr := runRise(t, args...)
			if code != 1 || !strings.Contains(stderr, saeDir) {
				t.Errorf("%s: rise %s: exit %d, %q; want 1 and the SAE named", damage.name, args[0], code, stderr)
			}
		}
	}
}
