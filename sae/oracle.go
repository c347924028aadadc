package sae

import "fmt"

// Oracle returns the SAE that knows planted features (rise synth's
// truth): its decoder rows are the features' unit directions, [features,
// dModel], its encoder their transpose, b_dec the data's offset and every
// b_enc bias, a negative threshold above the noise. With orthonormal
// directions it reads each planted feature back exactly; tests hold what
// is built on an SAE to what it should find on the planted data.
func Oracle(directions, offset []float32, features, dModel int, bias float32) (*SAE, error) {
	if len(directions) != features*dModel || len(offset) != dModel {
		return nil, fmt.Errorf("oracle SAE: expected %d × %d directions and %d offsets, found %d and %d", features, dModel, dModel, len(directions), len(offset))
	}
	s, err := New(Standard, dModel, features, 0)
	if err != nil {
		return nil, err
	}
	copy(s.WDec, directions)
	for f := range features {
		for d := range dModel {
			s.WEnc[d*features+f] = directions[f*dModel+d]
		}
		s.BEnc[f] = bias
	}
	copy(s.BDec, offset)
	return s, nil
}
