// Package activations reads and writes rise activation dumps: one residual-stream
// vector per reasoning step, stored as .npy shards per layer beside a steps.jsonl
// file that describes each row.
//
// The canonical layout is the directory format "rise-activations/1":
//
//	manifest.json   format, model, d_model, position, delimiter, layers -> shards
//	steps.jsonl     one JSON object per row, shared by all layers
//	traces.jsonl    optional, one JSON object per trace
//	layerL-NNNNN.npy C-order float32 or float16 arrays of shape [rows, d_model]
//
// A bare .npy file (with an optional steps.jsonl beside it) and an .npz archive
// with one array per layer are read too. Rows are streamed in batches, in order
// or shuffled with a seed, so memory is bounded by the batch and never by the
// dump. Every defect of a file is a returned error that names the file and,
// where it applies, the row, line or field.
package activations
