// Package sae holds sparse autoencoders trained on activation dumps: their
// architectures (ReLU, TopK, BatchTopK, JumpReLU), training engines, metrics,
// SAELens-compatible files, and the geometry of their decoder columns
// (UMAP, clustering, silhouette scores, behaviour attribution), after RISE
// (arXiv 2512.23988).
//
// It reads activations through package activations and nothing else of rise.
package sae
