// Package ziptest writes zip archives that archive/zip cannot: archives
// whose members share bytes, the layout of a zip bomb. Tests use them to
// show that readers refuse such archives.
package ziptest

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"hash/crc32"
)

// Overlapping returns a zip archive with one deflated copy of content and
// a central directory of one entry per name, every entry pointing at that
// one local header and compressed stream: each member reads back as
// content, so the archive unpacks to len(names) times len(content) bytes
// from a single stream.
func Overlapping(names []string, content []byte) []byte {
	var comp bytes.Buffer
	fw, _ := flate.NewWriter(&comp, flate.BestCompression)
	fw.Write(content)
	fw.Close()
	crc := crc32.ChecksumIEEE(content)

	var b []byte
	le := binary.LittleEndian
	u16 := func(v int) { b = le.AppendUint16(b, uint16(v)) }
	u32 := func(v uint32) { b = le.AppendUint32(b, v) }
	// The local file header and the data (APPNOTE.TXT §4.3.7).
	u32(0x04034b50)
	u16(20) // version needed
	u16(0)  // flags
	u16(8)  // deflate
	u16(0)  // time
	u16(0)  // date
	u32(crc)
	u32(uint32(comp.Len()))
	u32(uint32(len(content)))
	u16(len(names[0]))
	u16(0) // extra
	b = append(b, names[0]...)
	b = append(b, comp.Bytes()...)
	// The central directory (§4.3.12), every entry at offset 0.
	cd := len(b)
	for _, name := range names {
		u32(0x02014b50)
		u16(20) // version made by
		u16(20) // version needed
		u16(0)
		u16(8)
		u16(0)
		u16(0)
		u32(crc)
		u32(uint32(comp.Len()))
		u32(uint32(len(content)))
		u16(len(name))
		u16(0) // extra
		u16(0) // comment
		u16(0) // disk
		u16(0) // internal attributes
		u32(0) // external attributes
		u32(0) // local header offset
		b = append(b, name...)
	}
	// The end of central directory record (§4.3.16).
	size := len(b) - cd
	u32(0x06054b50)
	u16(0)
	u16(0)
	u16(len(names))
	u16(len(names))
	u32(uint32(size))
	u32(uint32(cd))
	u16(0)
	return b
}
