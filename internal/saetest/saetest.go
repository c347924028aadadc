// Package saetest builds SAE weights by hand for the tests of the SAE
// package and of the commands that read SAEs. It does not import the SAE
// package, so that package's own tests can use it. Only tests import it.
package saetest

// SignedIdentity fills the weights of a ReLU SAE with d inputs and 2·d
// latents, laid out as sae.SAE holds them (wEnc is d×2d, wDec is 2d×d, both
// row-major and zero on entry), so that latent 2i reads +x_i and latent
// 2i+1 reads -x_i, with decoder rows +e_i and -e_i. With zero biases such an
// SAE reconstructs every row exactly.
func SignedIdentity(wEnc, wDec []float32, d int) {
	m := 2 * d
	for i := range d {
		wDec[(2*i)*d+i], wDec[(2*i+1)*d+i] = 1, -1
		wEnc[i*m+2*i], wEnc[i*m+2*i+1] = 1, -1
	}
}
