//go:build unix

package files

import (
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestOpenRegularRefusesOtherFiles gives OpenRegular a real named pipe (with
// no writer, so a plain open would wait forever), a symbolic link to it, a
// character device, a directory and a Unix socket: each is refused at once
// with an error naming the path and its kind. A regular file and a link to
// one open.
func TestOpenRegularRefusesOtherFiles(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "steps.jsonl")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.npy")
	if err := os.Symlink(fifo, link); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "s.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	regular := filepath.Join(dir, "manifest.json")
	os.WriteFile(regular, []byte("{}"), 0o644)
	regLink := filepath.Join(dir, "m2.json")
	os.Symlink(regular, regLink)

	for _, c := range []struct{ path, kind string }{
		{fifo, "a named pipe"}, {link, "a named pipe"}, {"/dev/zero", "a character device"},
		{dir, "a directory"}, {sock, "a socket"},
	} {
		done := make(chan error, 1)
		go func() {
			f, _, err := OpenRegular(c.path)
			if f != nil {
				f.Close()
			}
			done <- err
		}()
		select {
		case err := <-done:
			want := c.path + ": expected a regular file, found " + c.kind
			if err == nil || err.Error() != want || !errors.Is(err, ErrNotRegular) {
				t.Errorf("OpenRegular(%s): %v, want %q", c.path, err, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("OpenRegular(%s) blocked", c.path)
		}
	}
	for _, p := range []string{regular, regLink} {
		f, st, err := OpenRegular(p)
		if err != nil || st.Size() != 2 {
			t.Errorf("OpenRegular(%s): %v", p, err)
		}
		f.Close()
	}
	if _, _, err := OpenRegular(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a missing file: %v, want fs.ErrNotExist", err)
	}
}

// TestReadRegularLimit reads a file at the limit and refuses one a byte
// over it, and never reads a character device that would never end.
func TestReadRegularLimit(t *testing.T) {
	p := filepath.Join(t.TempDir(), "cfg.json")
	os.WriteFile(p, []byte(strings.Repeat("x", 100)), 0o644)
	if b, err := ReadRegular(p, 100, "a JSON object"); err != nil || len(b) != 100 {
		t.Errorf("at the limit: %d bytes, %v", len(b), err)
	}
	_, err := ReadRegular(p, 99, "a JSON object")
	if want := p + ": 100 bytes, expected a JSON object of at most 99 bytes"; err == nil || err.Error() != want {
		t.Errorf("over the limit: %v, want %q", err, want)
	}
	if _, err := ReadRegular("/dev/zero", 1<<20, "a JSON object"); err == nil || !strings.Contains(err.Error(), "character device") {
		t.Errorf("/dev/zero: %v", err)
	}
}
