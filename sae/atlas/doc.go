// Package atlas lays out and groups the decoder columns of an SAE and ties
// them to behaviours, after RISE (arXiv 2512.23988, §4): PCA maps and their
// trustworthiness, spherical k-means and agglomerative clusters, cosine
// silhouette scores, nearest features, behaviour attribution and vectors,
// and charts of maps and per-layer curves.
package atlas
