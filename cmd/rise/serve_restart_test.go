package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// serveProc is a rise serve process started by a test.
type serveProc struct {
	cmd    *exec.Cmd
	url    string
	stderr *lockedBuffer
	done   chan error
}

// lockedBuffer is a buffer a process writes while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startServe runs the rise binary's serve on a free loopback port and
// waits for its address.
func startServe(t *testing.T, bin string, args ...string) *serveProc {
	t.Helper()
	p := &serveProc{cmd: exec.Command(bin, append([]string{"serve", "--addr", "127.0.0.1:0"}, args...)...), stderr: &lockedBuffer{}, done: make(chan error, 1)}
	p.cmd.Stderr = p.stderr
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if u, ok := strings.CutPrefix(sc.Text(), "rise workbench: "); ok {
			p.url = strings.TrimSuffix(u, "/")
			break
		}
	}
	go io.Copy(io.Discard, out)
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.done
	})
	if p.url == "" {
		p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.done
		t.Fatalf("serve printed no address; stderr: %s", p.stderr)
	}
	return p
}

// stop interrupts the server as Ctrl-C does and waits for it to exit.
func (p *serveProc) stop(t *testing.T) {
	t.Helper()
	p.cmd.Process.Signal(os.Interrupt)
	select {
	case err := <-p.done:
		p.done <- err
		if err != nil {
			t.Fatalf("serve after Ctrl-C: %v; stderr: %s", err, p.stderr)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop within 30 s of Ctrl-C")
	}
}

func (p *serveProc) kill() {
	p.cmd.Process.Signal(syscall.SIGKILL)
	err := <-p.done
	p.done <- err
}

func (p *serveProc) post(t *testing.T, path, body string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Post(p.url+path, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v map[string]any
	json.NewDecoder(resp.Body).Decode(&v)
	return resp.StatusCode, v
}

type saeState struct {
	Name      string `json:"name"`
	State     string `json:"state"`
	Error     string `json:"error"`
	Resumable bool   `json:"resumable"`
}

func (p *serveProc) saes(t *testing.T) map[string]saeState {
	t.Helper()
	resp, err := http.Get(p.url + "/api/saes")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var list []saeState
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		t.Fatal(err)
	}
	out := map[string]saeState{}
	for _, s := range list {
		out[s.Name] = s
	}
	return out
}

func (p *serveProc) train(t *testing.T, name string, steps int) {
	t.Helper()
	body := fmt.Sprintf(`{"kind": "train", "dataset": "data", "name": %q, "arch": "topk", "k": 4, "width": 128, "steps": %d, "batch": 256}`, name, steps)
	if code, v := p.post(t, "/api/jobs", body); code != http.StatusAccepted {
		t.Fatalf("train %s: %d %v", name, code, v)
	}
}

func (p *serveProc) waitReady(t *testing.T, names ...string) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for _, n := range names {
		for {
			s := p.saes(t)[n]
			if s.State == "ready" {
				break
			}
			if s.State == "failed" || time.Now().After(deadline) {
				t.Fatalf("SAE %s: %+v, want ready", n, s)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// TestServeRestart trains SAEs in a real rise serve process, stops it with
// Ctrl-C and later with SIGKILL in the middle of a training, and starts it
// again on the same workspace each time: every SAE trained is listed, the
// killed training is listed as interrupted, and resuming it ends at the
// very weights of an unbroken run.
func TestServeRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("the restart test is skipped in -short mode")
	}
	bin, dir, data := buildRiseWithDump(t, "--rows", "4000", "--d-model", "32", "--features", "64")
	work := filepath.Join(dir, "work")
	args := []string{"--data", data, "--work", work}

	p := startServe(t, bin, args...)
	for _, n := range []string{"a", "b", "c"} {
		p.train(t, n, 200)
	}
	p.waitReady(t, "a", "b", "c")
	p.stop(t)

	p = startServe(t, bin, args...)
	if got := p.saes(t); len(got) != 3 {
		t.Fatalf("after Ctrl-C and a restart: %v, want a, b and c", got)
	}
	p.waitReady(t, "a", "b", "c")
	p.train(t, "d", 6000)
	ck := filepath.Join(work, "saes", "d", "training.ckpt")
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(5 * time.Millisecond) {
		if _, err := os.Stat(ck); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("training d wrote no checkpoint; stderr: %s", p.stderr)
		}
	}
	p.kill()

	p = startServe(t, bin, args...)
	got := p.saes(t)
	if len(got) != 4 || got["d"].State != "interrupted" || !got["d"].Resumable {
		t.Fatalf("after SIGKILL and a restart: %+v, want a, b, c and d interrupted", got)
	}
	for _, n := range []string{"a", "b", "c"} {
		if got[n].State != "ready" && got[n].State != "analysing" {
			t.Errorf("after SIGKILL, SAE %s is %s (%s)", n, got[n].State, got[n].Error)
		}
	}
	if code, v := p.post(t, "/api/saes/d/resume", ""); code != http.StatusAccepted {
		t.Fatalf("resume d: %d %v", code, v)
	}
	p.train(t, "whole", 6000)
	p.waitReady(t, "a", "b", "c", "d", "whole")
	a, _ := os.ReadFile(filepath.Join(work, "saes", "whole", "sae_weights.safetensors"))
	b, _ := os.ReadFile(filepath.Join(work, "saes", "d", "sae_weights.safetensors"))
	if len(a) == 0 || !bytes.Equal(a, b) {
		t.Errorf("the resumed SAE (%d bytes) differs from the unbroken run's (%d bytes)", len(b), len(a))
	}
	if strings.Contains(p.stderr.String(), "reading back") {
		t.Errorf("serve could not read back its workspace: %s", p.stderr)
	}
	p.stop(t)
}
