// Package ziplayout checks the layout of a zip archive, such as an .npz,
// before its members are trusted: a few kilobytes of zip can claim
// gigabytes of contents, and a zip bomb points many members at one
// compressed stream.
package ziplayout

import (
	"archive/zip"
	"fmt"
	"slices"

	"github.com/rise-interp/rise/internal/memory"
)

// MaxDeflateRatio is the most a deflate stream expands: a 258-byte match
// codes in as little as two bits (RFC 1951, §3.2.5), about 1032 to 1.
const MaxDeflateRatio = 1032

// localHeaderSize is the fixed part of a zip local file header, which
// comes before each member's data (APPNOTE.TXT, §4.3.7).
const localHeaderSize = 30

// Check verifies the members of a zip archive of size bytes, in the
// archive's central directory order:
//
//   - each member is stored or deflated;
//   - its data lies inside the file, after room for its local header;
//   - no two members share bytes: each member's data ends before the next
//     member's local header begins;
//   - a stored member's uncompressed size equals its compressed size, and a
//     deflated member declares no more than MaxDeflateRatio times its
//     compressed size (plus a little for the stream's end).
//
// It returns the sum of the members' declared uncompressed sizes, which
// with these checks is at most MaxDeflateRatio times the file's size.
// Errors name the member and say what was expected; they do not name the
// archive.
func Check(members []*zip.File, size int64) (total uint64, err error) {
	type span struct {
		name       string
		start, end uint64 // the member's data
	}
	spans := make([]span, 0, len(members))
	for _, f := range members {
		comp, unc := f.CompressedSize64, f.UncompressedSize64
		switch f.Method {
		case zip.Store:
			if comp != unc {
				return 0, fmt.Errorf("member %q is stored with %d bytes but declares %d uncompressed: expected the two to agree (corrupt archive)", f.Name, comp, unc)
			}
		case zip.Deflate:
			if limit := memory.Sum(memory.Product(comp, MaxDeflateRatio), 1024); unc > limit {
				return 0, fmt.Errorf("member %q declares %d bytes from %d compressed: deflate expands at most %d times (corrupt archive or zip bomb)", f.Name, unc, comp, MaxDeflateRatio)
			}
		default:
			return 0, fmt.Errorf("member %q uses compression method %d: expected stored (0) or deflated (8)", f.Name, f.Method)
		}
		off, err := f.DataOffset()
		if err != nil {
			return 0, fmt.Errorf("member %q: %v", f.Name, err)
		}
		end := memory.Sum(uint64(off), comp)
		if off < localHeaderSize || end > uint64(size) {
			return 0, fmt.Errorf("member %q: its data [%d, %d) lies outside the archive's %d bytes (truncated or corrupt archive)", f.Name, off, end, size)
		}
		spans = append(spans, span{f.Name, uint64(off), end})
		total = memory.Sum(total, unc)
	}
	slices.SortFunc(spans, func(a, b span) int {
		switch {
		case a.start < b.start:
			return -1
		case a.start > b.start:
			return 1
		}
		return 0
	})
	for i := 1; i < len(spans); i++ {
		a, b := spans[i-1], spans[i]
		if a.end > b.start-localHeaderSize {
			return 0, fmt.Errorf("members %q and %q overlap: %q's data [%d, %d) runs into %q's local header or data at %d: expected every member's bytes to be its own (a zip bomb points several members at one compressed stream)",
				a.name, b.name, a.name, a.start, a.end, b.name, b.start-localHeaderSize)
		}
	}
	return total, nil
}
