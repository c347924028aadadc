// Package steer changes a language model's residual stream along chosen
// directions and measures what that does: steering specs and vectors
// (sources npy:, sae:, atlas:, confidence:; operators add, scale, clamp,
// ablate; position policies), the hook that applies them during generation
// (Vectors as a model.HookFactory), capture of step activations into dumps,
// RISE's confidence vectors and step-boundary entropy, strength sweeps with
// behaviour counts, GGUF control vectors, and the backends that run a
// model: Native (steer/model in this process) and Remote (a server speaking
// the rise-backend/1 protocol of remote.go, documented in steer/remote's
// README with its Python reference server).
package steer
