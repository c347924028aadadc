// Package memory says how much memory the system can give rise, so that
// sizes read from files or flags are checked before anything is allocated,
// and computes sizes without overflow.
package memory

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math"
	"math/bits"
	"os"
	"strconv"
)

// Fallback is what Available assumes where the system does not say how
// much memory is free: enough for any SAE or model a workstation trains,
// and far short of the absurd sizes a corrupt file can claim.
const Fallback = 64 << 30

// Available returns how many bytes the process can allocate without making
// the system swap, and where the figure comes from: MemAvailable of
// /proc/meminfo on Linux, or Fallback where that cannot be read.
func Available() (bytes uint64, source string) {
	f, err := os.Open("/proc/meminfo")
	if err == nil {
		defer f.Close()
		if n, ok := ParseMemAvailable(io.LimitReader(f, 1<<20)); ok {
			return n, "MemAvailable in /proc/meminfo"
		}
	}
	return Fallback, "rise's assumption where the system does not say"
}

// ParseMemAvailable reads the MemAvailable line of a /proc/meminfo file
// ("MemAvailable:   23924568 kB") and returns it in bytes.
func ParseMemAvailable(r io.Reader) (uint64, bool) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		rest, ok := bytes.CutPrefix(sc.Bytes(), []byte("MemAvailable:"))
		if !ok {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) == 0 {
			return 0, false
		}
		n, err := strconv.ParseUint(string(f[0]), 10, 64)
		if err != nil {
			return 0, false
		}
		unit := uint64(1)
		if len(f) > 1 && string(f[1]) == "kB" {
			unit = 1024
		}
		return Product(n, unit), true
	}
	return 0, false
}

// Product returns the product of its factors, or math.MaxUint64 when it
// overflows, so that a size computed from untrusted numbers can be compared
// with a limit without wrapping around.
func Product(factors ...uint64) uint64 {
	p := uint64(1)
	for _, f := range factors {
		hi, lo := bits.Mul64(p, f)
		if hi != 0 {
			return math.MaxUint64
		}
		p = lo
	}
	return p
}

// Sum returns the sum of its terms, or math.MaxUint64 when it overflows.
func Sum(terms ...uint64) uint64 {
	s := uint64(0)
	for _, t := range terms {
		var carry uint64
		s, carry = bits.Add64(s, t, 0)
		if carry != 0 {
			return math.MaxUint64
		}
	}
	return s
}

// Check returns an error when need bytes are more than available. what
// says what needs them ("the weights of sae_weights.safetensors"); the
// error is one line with both figures and where the available one comes
// from.
func Check(need, available uint64, source, what string) error {
	if need <= available {
		return nil
	}
	return fmt.Errorf("%s need %s of memory, but %s is available (%s)", what, Bytes(need), Bytes(available), source)
}

// Bytes formats a size for a person: "512 B", "1.5 GiB"; a size that
// overflowed reads "more than 16 EiB".
func Bytes(n uint64) string {
	if n == math.MaxUint64 {
		return "more than 16 EiB"
	}
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
