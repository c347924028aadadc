//go:build unix

package activations

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rise-interp/rise/internal/npytest"
	"github.com/rise-interp/rise/internal/ziplayout/ziptest"
)

// inspectWithin runs Inspect on path and fails the test if it has not
// returned within ten seconds (a named pipe opened for reading waits for a
// writer forever).
func inspectWithin(t *testing.T, path string) error {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		_, err := Inspect(context.Background(), path, InspectOptions{Stats: true})
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatalf("Inspect(%s) has not returned after 10 s", path)
		return nil
	}
}

func mkfifo(t *testing.T, path string) {
	t.Helper()
	os.Remove(path)
	if err := syscall.Mkfifo(path, 0o644); err != nil {
		t.Fatal(err)
	}
}

// pipeAt returns a setup for TestSpecialFilesRefused that puts a named pipe
// at name in the dump and opens the dump, or with bare opens the pipe
// itself.
func pipeAt(name string, bare bool) func(t *testing.T, dir string) (open, file string) {
	return func(t *testing.T, dir string) (string, string) {
		p := filepath.Join(dir, name)
		mkfifo(t, p)
		if bare {
			return p, p
		}
		return dir, p
	}
}

// TestSpecialFilesRefused puts a named pipe (with no writer) in the place of
// each file a dump is read from, and the character device /dev/zero (which
// never ends) in the place of steps.jsonl: each is refused at once with one
// line naming the file and saying what it is.
func TestSpecialFilesRefused(t *testing.T) {
	for _, c := range []struct {
		name  string
		setup func(t *testing.T, dir string) (open, file string)
		want  string
	}{
		{"shard", pipeAt("layer3-00000.npy", false), "expected a regular file, found a named pipe"},
		{"manifest.json", pipeAt("manifest.json", false), "expected a regular file, found a named pipe"},
		{"steps.jsonl", pipeAt("steps.jsonl", false), "expected a regular file, found a named pipe"},
		{"traces.jsonl", pipeAt("traces.jsonl", false), "expected a regular file, found a named pipe"},
		{"bare .npy", pipeAt("acts.npy", true), "found a named pipe"},
		{".npz", pipeAt("acts.npz", true), "found a named pipe"},
		{"/dev/zero as steps.jsonl beside a .npy", func(t *testing.T, dir string) (string, string) {
			p := filepath.Join(dir, "layer3-00000.npy")
			steps := filepath.Join(dir, "steps.jsonl")
			os.Remove(steps)
			if err := os.Symlink("/dev/zero", steps); err != nil {
				t.Fatal(err)
			}
			return p, steps
		}, "expected a regular file, found a character device"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir, _ := testDump(t, 40, 4, []int{3}, 16, Float32)
			open, file := c.setup(t, dir)
			err := inspectWithin(t, open)
			if err == nil || !strings.Contains(err.Error(), file+": ") || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one naming %s and saying %q", err, file, c.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error is not one line: %q", err)
			}
		})
	}
}

// TestLinksOutsideDump replaces a shard and steps.jsonl with symbolic links
// to copies outside the dump: the same rule as for shard names with ".."
// refuses them. Links that stay inside the dump, and a dump directory that
// is itself a link, are read.
func TestLinksOutsideDump(t *testing.T) {
	for _, name := range []string{"layer3-00001.npy", "steps.jsonl"} {
		t.Run(name, func(t *testing.T) {
			dir, _ := testDump(t, 40, 4, []int{3}, 16, Float32)
			p := filepath.Join(dir, name)
			outside := filepath.Join(t.TempDir(), name)
			if err := os.Rename(p, outside); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(outside, p); err != nil {
				t.Fatal(err)
			}
			_, err := Inspect(context.Background(), dir, InspectOptions{})
			if err == nil || !strings.Contains(err.Error(), p+": a link to "+outside+", outside the dump directory") {
				t.Fatalf("error %v, want one saying %s links outside the dump", err, p)
			}
		})
	}

	dir, _ := testDump(t, 40, 4, []int{3}, 16, Float32)
	p := filepath.Join(dir, "layer3-00001.npy")
	sub := filepath.Join(dir, "shards")
	os.Mkdir(sub, 0o755)
	os.Rename(p, filepath.Join(sub, "s1.npy"))
	if err := os.Symlink(filepath.Join("shards", "s1.npy"), p); err != nil {
		t.Fatal(err)
	}
	alias := filepath.Join(t.TempDir(), "alias")
	if err := os.Symlink(dir, alias); err != nil {
		t.Fatal(err)
	}
	s, err := Inspect(context.Background(), alias, InspectOptions{Stats: true})
	if err != nil || s.Rows != 40 {
		t.Fatalf("a linked dump with a link inside it: %v", err)
	}
}

// npyZeros is a float32 .npy file of rows × cols zeros.
func npyZeros(rows, cols int) []byte {
	var b bytes.Buffer
	writeNpyHeader(&b, Float32, rows, cols)
	b.Write(make([]byte, rows*cols*4))
	return b.Bytes()
}

// TestNpzBombRefused opens an .npz whose six members share one deflate
// stream (a 1 MiB file that would unpack to six times as much) and one
// whose members, each its own stream, declare far more than activations
// compress to: both are refused when opened, before anything is unpacked.
func TestNpzBombRefused(t *testing.T) {
	dir := t.TempDir()
	bomb := filepath.Join(dir, "bomb.npz")
	names := []string{"layer0.npy", "layer1.npy", "layer2.npy", "layer3.npy", "layer4.npy", "layer5.npy"}
	os.WriteFile(bomb, ziptest.Overlapping(names, npyZeros(1<<16, 64)), 0o644)
	_, err := Open(bomb)
	if err == nil || !strings.Contains(err.Error(), bomb+": members \"layer0.npy\" and") || !strings.Contains(err.Error(), "overlap") {
		t.Fatalf("overlapping members: %v", err)
	}

	zeros := filepath.Join(dir, "zeros.npz")
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, name := range names {
		w, _ := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Deflate})
		w.Write(npyZeros(1<<15, 64))
	}
	zw.Close()
	os.WriteFile(zeros, buf.Bytes(), 0o644)
	_, err = Open(zeros)
	if err == nil || !strings.Contains(err.Error(), zeros+": the compressed members declare 50332416 bytes in all, more than 64 times") {
		t.Fatalf("members that declare more than activations compress to: %v", err)
	}
}

// TestNpzStreamLongerThanDeclared opens an .npz whose member's stream holds
// more bytes than its declared size (and its .npy header) say: reading its
// rows fails, naming the member, instead of unpacking the rest, so the
// bound checked at opening holds while inflating.
func TestNpzStreamLongerThanDeclared(t *testing.T) {
	good := npyZeros(1024, 2)
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, _ := zw.CreateHeader(&zip.FileHeader{Name: "layer2.npy", Method: zip.Deflate})
	w.Write(append(good, make([]byte, 4096)...))
	zw.Close()
	b := buf.Bytes()
	// Declare the size the header implies, in the local header and the
	// central directory, as a writer that lies would.
	long := uint32(len(good) + 4096)
	for i := 0; i+4 <= len(b); i++ {
		if bytes.Equal(b[i:i+4], le32(long)) {
			copy(b[i:], le32(uint32(len(good))))
		}
	}
	p := filepath.Join(t.TempDir(), "long.npz")
	os.WriteFile(p, b, 0o644)
	d, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	err = d.Layers[0].ReadRows(0, make([]float32, 8))
	if err == nil || !strings.Contains(err.Error(), p+":layer2.npy: reading rows 0 to 3: decompressing: the stream disagrees with the size") {
		t.Fatalf("reading a member whose stream runs past its size: %v", err)
	}
}

func le32(v uint32) []byte { return []byte{byte(v), byte(v >> 8), byte(v >> 16), byte(v >> 24)} }

// TestOpenStopsWhenCancelled opens a dump with a cancelled context: counting
// the lines of steps.jsonl stops with the context's error, and so does the
// decompression of a compressed .npz member on its first read.
func TestOpenStopsWhenCancelled(t *testing.T) {
	dir, _ := testDump(t, 40, 4, []int{3}, 16, Float32)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := OpenContext(ctx, dir); !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "steps.jsonl") {
		t.Errorf("counting steps under a cancelled context: %v", err)
	}

	p := filepath.Join(t.TempDir(), "acts.npz")
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, _ := zw.CreateHeader(&zip.FileHeader{Name: "layer3.npy", Method: zip.Deflate})
	w.Write(npytest.FromDict("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }", npytest.Float32s(1, 2, 3, 4)))
	zw.Close()
	os.WriteFile(p, buf.Bytes(), 0o644)
	ctx, cancel = context.WithCancel(context.Background())
	d, err := OpenContext(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	cancel()
	if err := d.Layers[0].ReadRows(0, make([]float32, 4)); !errors.Is(err, context.Canceled) {
		t.Errorf("decompressing under a cancelled context: %v", err)
	}
}

// TestLongStepsLine counts a steps.jsonl whose first line never ends (a
// file of 65 MiB without a newline): an error naming the file and line,
// not a count.
func TestLongStepsLine(t *testing.T) {
	dir, _ := testDump(t, 40, 4, []int{3}, 16, Float32)
	p := filepath.Join(dir, "steps.jsonl")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	chunk := bytes.Repeat([]byte("x"), 1<<20)
	for range 65 {
		f.Write(chunk)
	}
	f.Close()
	_, err = Open(dir)
	if err == nil || !strings.Contains(err.Error(), p+":1: line longer than 64 MiB") {
		t.Fatalf("a line without end: %v", err)
	}
}
