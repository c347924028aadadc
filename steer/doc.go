// Package steer changes a language model's residual stream along chosen
// directions during generation and measures the effect: steering vectors and
// operators (add, scale, clamp, ablate), position policies, experiment
// sweeps, GGUF control-vector export, and the model backends that run them.
package steer
