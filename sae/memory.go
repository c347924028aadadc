package sae

import (
	"github.com/rise-interp/rise/internal/memory"
)

// availableMemory says how many bytes the process can allocate and where
// the figure comes from. Tests replace it to check the refusals without
// depending on the machine.
var availableMemory = memory.Available

// checkMemory returns an error when need bytes are more than the system
// can give: what names what needs them.
func checkMemory(need uint64, what string) error {
	n, source := availableMemory()
	return memory.Check(need, n, source, what)
}

// u64 converts a count already known to be non-negative.
func u64(n int) uint64 { return uint64(max(n, 0)) }

// weightFloats returns how many float32 values the weights of an SAE of
// the given shape hold: W_enc and W_dec, b_enc, b_dec and a threshold
// (saturating rather than overflowing).
func weightFloats(dIn, dSae int) uint64 {
	d, m := u64(dIn), u64(dSae)
	return memory.Sum(memory.Product(2, d, m), memory.Product(2, m), d)
}

// trainingBytes estimates from below the memory a training run of c takes
// on rows of width dIn: the weights, their gradients and Adam's two moments,
// the copy returned at the end and the checkpoint being encoded (six times
// the weights in all), the engine's batch buffers (four [batch, d_in] and
// two [batch, width] arrays, and one [width, d_in] for the sparse decoder's
// gradient) and the shuffling pool.
func (c TrainConfig) trainingBytes(dIn int) uint64 {
	d, m, b := u64(dIn), u64(c.Width), u64(c.Batch)
	pool := max(memory.Product(4, b), 8192)
	floats := memory.Sum(
		memory.Product(6, weightFloats(dIn, c.Width)),
		memory.Product(4, b, d),
		memory.Product(2, b, m),
		memory.Product(m, d),
		memory.Product(pool, d),
	)
	return memory.Product(4, floats)
}
