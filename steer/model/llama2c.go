package model

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"

	"github.com/rise-interp/rise/internal/files"
)

// llama2.c checkpoint formats (github.com/karpathy/llama2.c, export.py):
//
//   - legacy: seven int32 (dim, hidden_dim, n_layers, n_heads, n_kv_heads,
//     vocab_size, seq_len; a negative vocab_size means the classifier is not
//     shared with the embedding), then float32 weights in run.c's order:
//     token embedding, all attention norms, wq, wk, wv, wo (each for all
//     layers), all ffn norms, w1, w2, w3, final norm, the RoPE tables
//     (seq_len·head_size/2 twice, unused), and the classifier if not shared.
//   - version 1: magic "ak42" (uint32 0x616b3432), int32 version 1, the
//     same seven int32, a uint8 shared-classifier flag, zero padding to 256
//     bytes, then float32 weights: all attention norms, all ffn norms, the
//     final norm, the token embedding, wq, wk, wv, wo, w1, w2, w3 (each for
//     all layers), and the classifier if not shared.
//
// Both use llama2.c's RoPE, which rotates adjacent pairs, RMSNorm epsilon
// 1e-5 and theta 10000.
const (
	llama2cMagic     = 0x616b3432
	llama2cV1Header  = 256
	llama2cNormEps   = 1e-5
	llama2cRopeTheta = 10000
)

// LoadLlama2C reads a llama2.c checkpoint, legacy or version 1.
func LoadLlama2C(path string) (*Model, error) {
	f, st, err := files.OpenRegular(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	size := st.Size()
	var head [8]byte
	if _, err := io.ReadFull(f, head[:]); err != nil {
		return nil, fmt.Errorf("%s: expected a llama2.c checkpoint, found %d bytes", path, size)
	}
	v1 := binary.LittleEndian.Uint32(head[:4]) == llama2cMagic
	var hdr [7]int32
	var shared bool
	var offset int64
	if v1 {
		if ver := int32(binary.LittleEndian.Uint32(head[4:])); ver != 1 {
			return nil, fmt.Errorf("%s: llama2.c export version %d: expected 1 (version 2 holds int8 weights, which this runtime does not read)", path, ver)
		}
		var b [29]byte
		if _, err := io.ReadFull(f, b[:]); err != nil {
			return nil, fmt.Errorf("%s: truncated version-1 header", path)
		}
		for i := range hdr {
			hdr[i] = int32(binary.LittleEndian.Uint32(b[4*i:]))
		}
		shared = b[28] != 0
		offset = llama2cV1Header
	} else {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return nil, err
		}
		if err := binary.Read(f, binary.LittleEndian, &hdr); err != nil {
			return nil, fmt.Errorf("%s: truncated header: expected 28 bytes", path)
		}
		shared = hdr[5] > 0
		if hdr[5] < 0 {
			hdr[5] = -hdr[5]
		}
		offset = 28
	}
	c := Config{Arch: ArchLlama, Dim: int(hdr[0]), Hidden: int(hdr[1]), Layers: int(hdr[2]), Heads: int(hdr[3]), KVHeads: int(hdr[4]),
		Vocab: int(hdr[5]), MaxSeq: int(hdr[6]), NormEps: llama2cNormEps, Theta: llama2cRopeTheta, RopeInterleaved: true, Tied: shared}
	if c.Heads > 0 {
		c.HeadDim = c.Dim / c.Heads
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("%s: not a llama2.c checkpoint this runtime can read (header dim %d, hidden %d, layers %d, heads %d, kv heads %d, vocab %d, seq_len %d): %w",
			path, hdr[0], hdr[1], hdr[2], hdr[3], hdr[4], hdr[5], hdr[6], err)
	}
	if c.Dim%c.Heads != 0 {
		return nil, fmt.Errorf("%s: dim %d is not a multiple of the %d heads", path, c.Dim, c.Heads)
	}
	D, H, L, V, q, kv := c.Dim, c.Hidden, c.Layers, c.Vocab, c.QDim(), c.KVDim()
	type part struct {
		name string
		n    int
	}
	var parts []part
	perLayer := func(name string, n int) part { return part{name, L * n} }
	rope := c.MaxSeq * c.HeadDim / 2
	if v1 {
		parts = []part{perLayer("attention norms", D), perLayer("ffn norms", D), {"final norm", D}, {"token embedding", V * D},
			perLayer("wq", q*D), perLayer("wk", kv*D), perLayer("wv", kv*D), perLayer("wo", D*q),
			perLayer("w1", H*D), perLayer("w2", D*H), perLayer("w3", H*D)}
	} else {
		parts = []part{{"token embedding", V * D}, perLayer("attention norms", D),
			perLayer("wq", q*D), perLayer("wk", kv*D), perLayer("wv", kv*D), perLayer("wo", D*q),
			perLayer("ffn norms", D), perLayer("w1", H*D), perLayer("w2", D*H), perLayer("w3", H*D),
			{"final norm", D}, {"rope cos", rope}, {"rope sin", rope}}
	}
	if !shared {
		parts = append(parts, part{"classifier", V * D})
	}
	var total int64
	for _, p := range parts {
		total += int64(p.n)
	}
	if want := offset + 4*total; size != want {
		return nil, fmt.Errorf("%s: expected %d bytes for a %s llama2.c checkpoint of these sizes (dim %d, %d layers, vocab %d, shared classifier %v), found %d",
			path, want, map[bool]string{true: "version-1", false: "legacy"}[v1], D, L, V, shared, size)
	}
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return nil, err
	}
	raw := make([]byte, 4*total)
	if _, err := io.ReadFull(f, raw); err != nil {
		return nil, fmt.Errorf("%s: reading weights: %w", path, err)
	}
	all := make([]float32, total)
	for i := range all {
		v := math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return nil, fmt.Errorf("%s: weight %d (byte %d) is %v", path, i, offset+4*int64(i), v)
		}
		all[i] = v
	}
	got := map[string][]float32{}
	at := 0
	for _, p := range parts {
		got[p.name] = all[at : at+p.n]
		at += p.n
	}
	m := &Model{Config: c, Name: path, Embed: NewMatrix(V, D, got["token embedding"]), Norm: got["final norm"]}
	layer := func(name string, i, n int) []float32 { return got[name][i*n : (i+1)*n] }
	mat := func(name string, i, rows, cols int) Matrix { return NewMatrix(rows, cols, layer(name, i, rows*cols)) }
	for i := range L {
		m.Blocks = append(m.Blocks, Block{
			AttnNorm: layer("attention norms", i, D), WQ: mat("wq", i, q, D), WK: mat("wk", i, kv, D), WV: mat("wv", i, kv, D),
			WO: mat("wo", i, D, q), MLPNorm: layer("ffn norms", i, D),
			WGate: mat("w1", i, H, D), WDown: mat("w2", i, D, H), WUp: mat("w3", i, H, D),
		})
	}
	m.Out = m.Embed
	if !shared {
		m.Out = NewMatrix(V, D, got["classifier"])
	}
	if err := m.init(); err != nil {
		return nil, err
	}
	return m, nil
}
