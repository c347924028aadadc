//go:build !unix

package files

// openFlags adds nothing where named pipes do not block an open.
const openFlags = 0
