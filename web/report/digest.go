package report

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"strconv"

	"github.com/rise-interp/rise/internal/files"
	"github.com/rise-interp/rise/internal/inputerr"
)

// hash records a file's size and SHA-256 digest among the report's inputs,
// reading it in blocks and stopping when the build's context ends. The
// first failure is kept in hashErr.
func (b *builder) hash(role, path string) {
	if b.hashErr != nil {
		return
	}
	f, _, err := files.OpenRegular(path)
	if err != nil {
		b.hashErr = inputerr.Wrap(err)
		return
	}
	defer f.Close()
	h := sha256.New()
	buf := make([]byte, 1<<20)
	var n int64
	for {
		if err := b.ctx.Err(); err != nil {
			b.hashErr = err
			return
		}
		k, err := f.Read(buf)
		h.Write(buf[:k])
		n += int64(k)
		if err == io.EOF {
			break
		}
		if err != nil {
			b.hashErr = inputerr.Errorf("%s: %v", path, err)
			return
		}
	}
	b.files = append(b.files, []string{role, path, strconv.FormatInt(n, 10), hex.EncodeToString(h.Sum(nil))})
}
