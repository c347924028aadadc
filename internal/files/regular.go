// Package files opens the files rise reads as input. Only regular files are
// read: a named pipe, a device or a socket given in place of a dump shard,
// a steps.jsonl or an SAE would block the open or never end, so it is
// refused with an error that names the file and says what it is.
package files

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// OpenRegular opens path for reading when, after following symbolic links,
// it is a regular file. Opening never blocks: on Unix the file is opened
// without waiting for a writer (O_NONBLOCK, which changes nothing for
// regular files) and checked before anything is read. A missing file is
// returned as the os package's error, so errors.Is(err, fs.ErrNotExist)
// holds; anything other than a regular file is an error naming path and
// saying what it is ("a named pipe").
func OpenRegular(path string) (*os.File, fs.FileInfo, error) {
	// The Stat first gives a clear error without opening at all; the
	// Fstat after opening covers a file swapped in between the two.
	st, err := os.Stat(path)
	if err != nil {
		return nil, nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, nil, notRegular(path, st.Mode())
	}
	f, err := os.OpenFile(path, os.O_RDONLY|openFlags, 0)
	if err != nil {
		return nil, nil, err
	}
	st, err = f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, nil, notRegular(path, st.Mode())
	}
	return f, st, nil
}

// ReadRegular reads a whole regular file of at most limit bytes, such as a
// JSON configuration. A longer file is an error naming path, what it was
// expected to be (what, e.g. "a JSON object") and the limit; the file is
// never read past limit+1 bytes, whatever its size claims.
func ReadRegular(path string, limit int64, what string) ([]byte, error) {
	f, st, err := OpenRegular(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if st.Size() > limit {
		return nil, tooLarge(path, st.Size(), limit, what)
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, tooLarge(path, int64(len(data)), limit, what)
	}
	return data, nil
}

func tooLarge(path string, size, limit int64, what string) error {
	return fmt.Errorf("%s: %d bytes, expected %s of at most %d bytes", path, size, what, limit)
}

// ErrNotRegular is wrapped by the errors of OpenRegular and ReadRegular for
// a path that is not a regular file.
var ErrNotRegular = errors.New("not a regular file")

type notRegularError struct {
	path string
	kind string
}

func (e *notRegularError) Error() string {
	return fmt.Sprintf("%s: expected a regular file, found %s", e.path, e.kind)
}

func (e *notRegularError) Unwrap() error { return ErrNotRegular }

func notRegular(path string, m fs.FileMode) error {
	return &notRegularError{path: path, kind: Kind(m)}
}

// Kind says what kind of file a mode describes, with an article, for error
// messages: "a regular file", "a directory", "a named pipe", ...
func Kind(m fs.FileMode) string {
	switch {
	case m.IsRegular():
		return "a regular file"
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	}
	return "an irregular file"
}
