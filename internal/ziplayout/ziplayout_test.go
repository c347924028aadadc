package ziplayout

import (
	"archive/zip"
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/rise-interp/rise/internal/ziplayout/ziptest"
)

func members(t *testing.T, b []byte) []*zip.File {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	return zr.File
}

// TestCheckRefusesSharedStreams reads an archive whose six members are one
// deflate stream of 1 MiB of zeros: archive/zip opens every member, and
// Check refuses the archive, naming two members that overlap.
func TestCheckRefusesSharedStreams(t *testing.T) {
	names := []string{"layer0.npy", "layer1.npy", "layer2.npy", "layer3.npy", "layer4.npy", "layer5.npy"}
	b := ziptest.Overlapping(names, make([]byte, 1<<20))
	fs := members(t, b)
	for _, f := range fs { // the layout is what a zip bomb looks like to a reader
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		n, err := io.Copy(io.Discard, rc)
		if err != nil || n != 1<<20 {
			t.Fatalf("member %s reads %d bytes, %v", f.Name, n, err)
		}
	}
	_, err := Check(fs, int64(len(b)))
	if err == nil || !strings.Contains(err.Error(), "overlap") || !strings.Contains(err.Error(), `"layer0.npy"`) {
		t.Errorf("Check: %v, want an overlap naming the members", err)
	}
}

// TestCheckOrdinaryArchives passes archives written by archive/zip, stored
// and deflated, and sums their declared sizes.
func TestCheckOrdinaryArchives(t *testing.T) {
	for _, method := range []uint16{zip.Store, zip.Deflate} {
		var buf bytes.Buffer
		zw := zip.NewWriter(&buf)
		for _, name := range []string{"a.npy", "b.npy", "c.npy"} {
			w, _ := zw.CreateHeader(&zip.FileHeader{Name: name, Method: method})
			w.Write(bytes.Repeat([]byte(name), 1000))
		}
		zw.Close()
		total, err := Check(members(t, buf.Bytes()), int64(buf.Len()))
		if err != nil || total != 15000 {
			t.Errorf("method %d: total %d, %v", method, total, err)
		}
	}
}

// TestCheckDeclaredSizes refuses a deflated member that declares more than
// deflate can give from its bytes, a stored member whose two sizes differ,
// and a member whose data runs past the end of the file.
func TestCheckDeclaredSizes(t *testing.T) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, _ := zw.CreateHeader(&zip.FileHeader{Name: "a.npy", Method: zip.Deflate})
	w.Write(make([]byte, 5000))
	zw.Close()
	fs := members(t, buf.Bytes())
	fs[0].UncompressedSize64 = fs[0].CompressedSize64*MaxDeflateRatio + 2000
	if _, err := Check(fs, int64(buf.Len())); err == nil || !strings.Contains(err.Error(), "deflate expands at most 1032 times") {
		t.Errorf("an impossible ratio: %v", err)
	}
	fs = members(t, buf.Bytes())
	fs[0].Method = zip.Store
	if _, err := Check(fs, int64(buf.Len())); err == nil || !strings.Contains(err.Error(), "expected the two to agree") {
		t.Errorf("a stored member with two sizes: %v", err)
	}
	fs = members(t, buf.Bytes())
	fs[0].CompressedSize64 += 1 << 30
	fs[0].UncompressedSize64 = fs[0].CompressedSize64
	if _, err := Check(fs, int64(buf.Len())); err == nil || !strings.Contains(err.Error(), "lies outside the archive") {
		t.Errorf("data past the end: %v", err)
	}
}
