package synth

import (
	"fmt"

	"github.com/rise-interp/rise/activations"
)

// readNpyFloat32 reads a .npy file that must have shape [rows, cols], as the
// synthetic truth files do.
func readNpyFloat32(path string, rows, cols int) ([]float32, error) {
	x, r, c, err := activations.ReadNpy(path)
	if err != nil {
		return nil, fmt.Errorf("read synthetic truth: %w", err)
	}
	if r != rows || c != cols {
		return nil, fmt.Errorf("read synthetic truth: %s: expected shape (%d, %d), found (%d, %d)", path, rows, cols, r, c)
	}
	return x, nil
}
