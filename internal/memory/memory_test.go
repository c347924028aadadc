package memory

import (
	"math"
	"strings"
	"testing"
)

func TestParseMemAvailable(t *testing.T) {
	// The first lines of this project's machine's /proc/meminfo.
	const meminfo = "MemTotal:       32871264 kB\nMemFree:         1236552 kB\nMemAvailable:   23924568 kB\nBuffers:          408112 kB\n"
	n, ok := ParseMemAvailable(strings.NewReader(meminfo))
	if !ok || n != 23924568*1024 {
		t.Errorf("MemAvailable: %d, %v; want %d", n, ok, 23924568*1024)
	}
	for _, bad := range []string{"MemTotal: 5 kB\n", "MemAvailable:\n", "MemAvailable: lots kB\n", ""} {
		if _, ok := ParseMemAvailable(strings.NewReader(bad)); ok {
			t.Errorf("%q read as a figure", bad)
		}
	}
	if n, _ := ParseMemAvailable(strings.NewReader("MemAvailable: 18446744073709551615 kB\n")); n != math.MaxUint64 {
		t.Errorf("an overflowing figure reads %d, want the largest size", n)
	}
	if n, src := Available(); n == 0 || src == "" {
		t.Errorf("Available: %d from %q", n, src)
	}
}

func TestSaturatingSizes(t *testing.T) {
	for _, c := range []struct {
		got, want uint64
	}{
		{Product(16, 1<<59), 1 << 63},                   // d_in 16 × width 2^59: wraps in int64, not here
		{Product(4, 16, math.MaxInt64), math.MaxUint64}, // 4 bytes × d_in × width MaxInt64
		{Product(4, 1536, 2048), 4 * 1536 * 2048},       // an ordinary SAE
		{Product(), 1}, // no factors
		{Sum(math.MaxUint64-1, 2), math.MaxUint64},      // overflow
		{Sum(1, 2, 3), 6},                               // no overflow
		{Sum(Product(1<<40, 1<<30), 1), math.MaxUint64}, // a saturated term stays saturated
	} {
		if c.got != c.want {
			t.Errorf("got %d, want %d", c.got, c.want)
		}
	}
	if err := Check(10, 10, "test", "x"); err != nil {
		t.Errorf("need = available: %v", err)
	}
	err := Check(math.MaxUint64, 1<<30, "MemAvailable in /proc/meminfo", "the weights")
	if want := "the weights need more than 16 EiB of memory, but 1.0 GiB is available (MemAvailable in /proc/meminfo)"; err == nil || err.Error() != want {
		t.Errorf("Check: %v, want %q", err, want)
	}
}
