// Package atlas lays out and groups the decoder columns of an SAE and ties
// them to behaviours: UMAP and PCA maps, clusters, silhouette scores,
// behaviour attribution and vectors, after RISE (arXiv 2512.23988, §4).
package atlas
