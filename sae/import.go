package sae

import (
	"archive/zip"
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/x448/float16"

	"github.com/rise-interp/rise/activations"
)

// The files that identify the SAE formats rise imports.
const (
	// GemmaScopeFile is a Gemma Scope parameter archive (params.npz).
	GemmaScopeFile = "params.npz"
	// SparsifyWeightsFile holds an EleutherAI sparsify SAE's tensors; its
	// cfg.json sits beside it.
	SparsifyWeightsFile = "sae.safetensors"
)

// maxNpyHeader bounds the header dictionary of a .npy member; numpy itself
// refuses longer ones by default.
const maxNpyHeader = 10000

// layerPattern finds a layer number in a Gemma Scope path
// (".../layer_20/width_16k/...") or a sparsify hookpoint ("layers.6",
// "layers_6.mlp").
var layerPattern = regexp.MustCompile(`layers?[._](\d+)`)

// ImportGemmaScope reads a Gemma Scope SAE: a params.npz archive (path may
// be the file or the directory holding it) with float32 arrays W_enc [d_in,
// d_sae], W_dec [d_sae, d_in], b_enc [d_sae], b_dec [d_in] and threshold
// [d_sae]. Gemma Scope SAEs are JumpReLU SAEs that do not subtract b_dec
// from their input, so the result has ApplyBDecToInput false. A layer number
// in the path (layer_20) is recorded as Metadata.HookLayer.
func ImportGemmaScope(path string) (*SAE, error) {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		path = filepath.Join(path, GemmaScopeFile)
	}
	fail := func(err error) error { return fmt.Errorf("import Gemma Scope SAE %s: %w", path, err) }
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fail(err)
	}
	zr, err := zip.OpenReader(path)
	if err != nil {
		if notExist(err) {
			return nil, fail(err)
		}
		return nil, fail(fmt.Errorf("expected a .npz (zip) archive of .npy arrays: %v", err))
	}
	defer zr.Close()

	canon := map[string]string{"w_enc": "W_enc", "w_dec": "W_dec", "b_enc": "b_enc", "b_dec": "b_dec", "threshold": "threshold"}
	arrays := map[string]npyData{}
	for _, f := range zr.File {
		key := strings.TrimSuffix(f.Name, ".npy")
		name, ok := canon[strings.ToLower(key)]
		if !ok {
			return nil, fail(fmt.Errorf("unexpected array %q: expected W_enc, W_dec, b_enc, b_dec and threshold", f.Name))
		}
		if _, dup := arrays[name]; dup {
			return nil, fail(fmt.Errorf("array %s appears twice (member %q)", name, f.Name))
		}
		a, err := readNpzMember(f, fi.Size())
		if err != nil {
			return nil, fail(fmt.Errorf("array %s: %w", f.Name, err))
		}
		arrays[name] = a
	}
	for _, name := range []string{"W_enc", "W_dec", "b_enc", "b_dec", "threshold"} {
		if _, ok := arrays[name]; !ok {
			return nil, fail(fmt.Errorf("array %s is missing: expected W_enc, W_dec, b_enc, b_dec and threshold", name))
		}
	}
	we := arrays["W_enc"]
	if len(we.shape) != 2 || we.shape[0] == 0 || we.shape[1] == 0 {
		return nil, fail(fmt.Errorf("W_enc has shape %s, expected [d_in, d_sae]", shapeList(we.shape)))
	}
	din, dsae := we.shape[0], we.shape[1]
	from := fmt.Sprintf("from W_enc %s", shapeList(we.shape))
	wantShapes := map[string][]int{"W_dec": {dsae, din}, "b_enc": {dsae}, "b_dec": {din}, "threshold": {dsae}}
	for _, name := range []string{"W_dec", "b_enc", "b_dec", "threshold"} {
		if got, want := arrays[name].shape, wantShapes[name]; !slices.Equal(got, want) {
			return nil, fail(fmt.Errorf("%s has shape %s, expected %s %s", name, shapeList(got), dimNames(name, din, dsae), from))
		}
	}
	s := &SAE{
		Arch: JumpReLU, DIn: din, DSae: dsae,
		WEnc: we.data, WDec: arrays["W_dec"].data, BEnc: arrays["b_enc"].data, BDec: arrays["b_dec"].data,
		Threshold:        arrays["threshold"].data,
		ApplyBDecToInput: false, InputScale: 1, Normalization: activations.NormNone,
	}
	if m := layerPattern.FindAllStringSubmatch(filepath.ToSlash(path), -1); m != nil {
		if l, err := strconv.Atoi(m[len(m)-1][1]); err == nil {
			s.Metadata.HookLayer = l
		}
	}
	if err := s.Check(); err != nil {
		return nil, fail(err)
	}
	return s, nil
}

// dimNames writes the expected shape of a named SAE tensor with its
// dimensions' names.
func dimNames(name string, din, dsae int) string {
	switch name {
	case "W_enc":
		return fmt.Sprintf("[d_in %d, d_sae %d]", din, dsae)
	case "W_dec", "encoder.weight":
		return fmt.Sprintf("[d_sae %d, d_in %d]", dsae, din)
	case "b_dec":
		return fmt.Sprintf("[d_in %d]", din)
	}
	return fmt.Sprintf("[d_sae %d]", dsae)
}

// npyData is a float array read from a .npy member, in C order.
type npyData struct {
	shape []int
	data  []float32
}

// readNpzMember reads one .npy member of an .npz archive: a float16,
// float32 or float64 array of one or two dimensions, in either byte order
// and either memory order (returned in C order). The header is checked
// against the member's size, and that against the archive's size
// (archiveSize), before the data is allocated.
func readNpzMember(f *zip.File, archiveSize int64) (npyData, error) {
	limit := archiveSize
	if f.Method != zip.Store {
		limit = archiveSize * 1100 // deflate expands at most about 1032 times
	}
	rc, err := f.Open()
	if err != nil {
		return npyData{}, err
	}
	defer rc.Close()
	r := bufio.NewReaderSize(rc, 1<<16)
	var pre [8]byte
	if _, err := io.ReadFull(r, pre[:]); err != nil {
		return npyData{}, fmt.Errorf("not a .npy array: %s", npyShort(err, 8))
	}
	if string(pre[:6]) != "\x93NUMPY" {
		return npyData{}, fmt.Errorf("not a .npy array: expected the magic bytes \\x93NUMPY, found %q", pre[:6])
	}
	var hlen, lenSize int
	switch pre[6] {
	case 1:
		var b [2]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return npyData{}, fmt.Errorf("truncated .npy header: %s", npyShort(err, 2))
		}
		hlen, lenSize = int(binary.LittleEndian.Uint16(b[:])), 2
	case 2, 3:
		var b [4]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return npyData{}, fmt.Errorf("truncated .npy header: %s", npyShort(err, 4))
		}
		v := binary.LittleEndian.Uint32(b[:])
		if v > maxNpyHeader {
			return npyData{}, fmt.Errorf("absurd .npy header length %d bytes, expected at most %d", v, maxNpyHeader)
		}
		hlen, lenSize = int(v), 4
	default:
		return npyData{}, fmt.Errorf("unsupported .npy format version %d.%d: expected 1.0, 2.0 or 3.0", pre[6], pre[7])
	}
	if hlen > maxNpyHeader {
		return npyData{}, fmt.Errorf("absurd .npy header length %d bytes, expected at most %d", hlen, maxNpyHeader)
	}
	hdr := make([]byte, hlen)
	if _, err := io.ReadFull(r, hdr); err != nil {
		return npyData{}, fmt.Errorf("truncated .npy header: %s", npyShort(err, hlen))
	}
	descr, fortran, shape, err := parseNpyHeader(string(hdr))
	if err != nil {
		return npyData{}, err
	}
	var order binary.ByteOrder = binary.LittleEndian
	if strings.HasPrefix(descr, ">") {
		order = binary.BigEndian
	}
	var esize int
	switch strings.TrimLeft(descr, "<>=|") {
	case "f2":
		esize = 2
	case "f4":
		esize = 4
	case "f8":
		esize = 8
	default:
		return npyData{}, fmt.Errorf("unsupported dtype %s (%s): expected float32 (<f4), float16 or float64", descr, npyTypeName(descr))
	}
	if len(shape) < 1 || len(shape) > 2 {
		return npyData{}, fmt.Errorf("array has shape %s: expected one or two dimensions", shapeList(shape))
	}
	// The member's size comes from the archive's directory; it is only
	// verified once the member has been read, so bound it by what the file
	// can hold before trusting it for an allocation.
	size := int64(f.UncompressedSize64)
	if size < 0 || size > limit {
		return npyData{}, fmt.Errorf("member claims %d bytes, more than an archive of this size can hold (corrupt archive)", f.UncompressedSize64)
	}
	dataBytes := size - int64(8+lenSize+hlen)
	maxElems := max(dataBytes, 0) / int64(esize)
	n := int64(1)
	if !slices.Contains(shape, 0) {
		for _, d := range shape {
			if n > maxElems/int64(d) {
				return npyData{}, fmt.Errorf("array of shape %s and dtype %s needs more than the %d data bytes the member holds (truncated archive?)", shapeList(shape), descr, dataBytes)
			}
			n *= int64(d)
		}
	} else {
		n = 0
	}
	if n*int64(esize) != dataBytes {
		return npyData{}, fmt.Errorf("array of shape %s and dtype %s needs %d data bytes, the member holds %d", shapeList(shape), descr, n*int64(esize), dataBytes)
	}
	out := make([]float32, n)
	buf := make([]byte, 1<<16)
	buf = buf[:len(buf)/esize*esize]
	for done := int64(0); done < n; {
		m := min(int64(len(buf)/esize), n-done)
		if _, err := io.ReadFull(r, buf[:m*int64(esize)]); err != nil {
			return npyData{}, fmt.Errorf("reading element %d of %d: %s", done, n, npyShort(err, int(m)*esize))
		}
		for i := range m {
			b := buf[i*int64(esize):]
			var v float32
			switch esize {
			case 2:
				v = float16.Frombits(order.Uint16(b)).Float32()
			case 4:
				v = math.Float32frombits(order.Uint32(b))
			case 8:
				v = float32(math.Float64frombits(order.Uint64(b)))
			}
			out[done+i] = v
		}
		done += m
	}
	if fortran && len(shape) == 2 {
		rows, cols := shape[0], shape[1]
		c := make([]float32, len(out))
		for j := range cols {
			for i := range rows {
				c[i*cols+j] = out[j*rows+i]
			}
		}
		out = c
	}
	return npyData{shape: shape, data: out}, nil
}

// parseNpyHeader reads the dictionary of a .npy header, such as
// {'descr': '<f4', 'fortran_order': False, 'shape': (2304, 16384), }.
func parseNpyHeader(hdr string) (descr string, fortran bool, shape []int, err error) {
	p := &pyLiteral{s: hdr}
	v, err := p.value(0)
	if err != nil {
		return "", false, nil, fmt.Errorf("corrupt .npy header %q: %v", clipBytes([]byte(hdr), 80), err)
	}
	p.space()
	if p.i != len(p.s) {
		return "", false, nil, fmt.Errorf("corrupt .npy header %q: unexpected text after the dictionary", clipBytes([]byte(hdr), 80))
	}
	d, ok := v.(map[string]any)
	if !ok {
		return "", false, nil, fmt.Errorf("corrupt .npy header %q: expected a dictionary", clipBytes([]byte(hdr), 80))
	}
	if descr, ok = d["descr"].(string); !ok {
		return "", false, nil, fmt.Errorf("corrupt .npy header %q: expected 'descr' to be a type string such as '<f4'", clipBytes([]byte(hdr), 80))
	}
	if fortran, ok = d["fortran_order"].(bool); !ok {
		return "", false, nil, fmt.Errorf("corrupt .npy header %q: expected 'fortran_order' to be True or False", clipBytes([]byte(hdr), 80))
	}
	tup, ok := d["shape"].([]any)
	if !ok {
		return "", false, nil, fmt.Errorf("corrupt .npy header %q: expected 'shape' to be a tuple of integers", clipBytes([]byte(hdr), 80))
	}
	for _, x := range tup {
		n, ok := x.(int64)
		if !ok || n < 0 || n > math.MaxInt32 {
			return "", false, nil, fmt.Errorf("corrupt .npy header %q: expected 'shape' to be a tuple of non-negative integers", clipBytes([]byte(hdr), 80))
		}
		shape = append(shape, int(n))
	}
	return descr, fortran, shape, nil
}

// pyLiteral parses the small subset of Python literals .npy headers use:
// dictionaries, tuples, lists, strings, integers, True, False and None.
type pyLiteral struct {
	s string
	i int
}

func (p *pyLiteral) space() {
	for p.i < len(p.s) && strings.IndexByte(" \t\r\n", p.s[p.i]) >= 0 {
		p.i++
	}
}

func (p *pyLiteral) value(depth int) (any, error) {
	if depth > 8 {
		return nil, errors.New("nested too deeply")
	}
	p.space()
	if p.i >= len(p.s) {
		return nil, errors.New("unexpected end")
	}
	switch c := p.s[p.i]; {
	case c == '{':
		p.i++
		m := map[string]any{}
		for {
			p.space()
			if p.i < len(p.s) && p.s[p.i] == '}' {
				p.i++
				return m, nil
			}
			k, err := p.value(depth + 1)
			if err != nil {
				return nil, err
			}
			ks, ok := k.(string)
			if !ok {
				return nil, fmt.Errorf("expected a string key at offset %d", p.i)
			}
			p.space()
			if p.i >= len(p.s) || p.s[p.i] != ':' {
				return nil, fmt.Errorf("expected ':' at offset %d", p.i)
			}
			p.i++
			v, err := p.value(depth + 1)
			if err != nil {
				return nil, err
			}
			if _, dup := m[ks]; dup {
				return nil, fmt.Errorf("key %q appears twice", ks)
			}
			m[ks] = v
			if err := p.sep('}'); err != nil {
				return nil, err
			}
		}
	case c == '(' || c == '[':
		end := byte(')')
		if c == '[' {
			end = ']'
		}
		p.i++
		var xs []any
		for {
			p.space()
			if p.i < len(p.s) && p.s[p.i] == end {
				p.i++
				if xs == nil {
					xs = []any{}
				}
				return xs, nil
			}
			v, err := p.value(depth + 1)
			if err != nil {
				return nil, err
			}
			xs = append(xs, v)
			if err := p.sep(end); err != nil {
				return nil, err
			}
		}
	case c == '\'' || c == '"':
		j := strings.IndexByte(p.s[p.i+1:], c)
		if j < 0 {
			return nil, errors.New("unterminated string")
		}
		v := p.s[p.i+1 : p.i+1+j]
		p.i += j + 2
		return v, nil
	case c == '-' || (c >= '0' && c <= '9'):
		j := p.i + 1
		for j < len(p.s) && p.s[j] >= '0' && p.s[j] <= '9' {
			j++
		}
		n, err := strconv.ParseInt(p.s[p.i:j], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("bad integer %q", p.s[p.i:j])
		}
		p.i = j
		if p.i < len(p.s) && p.s[p.i] == 'L' { // Python 2 long
			p.i++
		}
		return n, nil
	}
	for word, v := range map[string]any{"True": true, "False": false, "None": nil} {
		if strings.HasPrefix(p.s[p.i:], word) {
			p.i += len(word)
			return v, nil
		}
	}
	return nil, fmt.Errorf("unexpected %q at offset %d", p.s[p.i], p.i)
}

// sep consumes a ',' or stops before the closing end.
func (p *pyLiteral) sep(end byte) error {
	p.space()
	if p.i < len(p.s) && p.s[p.i] == ',' {
		p.i++
		return nil
	}
	if p.i < len(p.s) && p.s[p.i] == end {
		return nil
	}
	return fmt.Errorf("expected ',' or %q at offset %d", end, p.i)
}

func npyShort(err error, want int) string {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Sprintf("the member ends before %d more bytes (truncated)", want)
	}
	return err.Error()
}

func npyTypeName(descr string) string {
	names := map[string]string{"f8": "float64", "f4": "float32", "f2": "float16", "i8": "int64", "i4": "int32",
		"i2": "int16", "i1": "int8", "u1": "uint8", "b1": "bool", "O": "object"}
	if n, ok := names[strings.TrimLeft(descr, "<>|=")]; ok {
		return n
	}
	return "unknown type"
}

// sparsifyConfig is what ImportSparsify reads of a sparsify cfg.json.
type sparsifyConfig struct {
	DIn             *int   `json:"d_in"`
	NumLatents      int    `json:"num_latents"`
	ExpansionFactor int    `json:"expansion_factor"`
	K               *int   `json:"k"`
	Activation      string `json:"activation"`
	Transcode       bool   `json:"transcode"`
	SkipConnection  bool   `json:"skip_connection"`
	EmbedSkip       bool   `json:"embed_skip"`
	GramLookup      bool   `json:"gram_lookup"`
	Signed          bool   `json:"signed"`
}

// ImportSparsify reads an EleutherAI sparsify SAE directory: cfg.json (d_in,
// k, num_latents or expansion_factor, activation) and sae.safetensors with
// encoder.weight [d_sae, d_in] (the transpose of W_enc), encoder.bias
// [d_sae], W_dec [d_sae, d_in] and b_dec [d_in]. sparsify's forward pass is
// a TopK SAE that subtracts b_dec from its input (ReLU, then the k largest
// latents), so the result is a TopK SAE with ApplyBDecToInput true.
// Transcoders, skip connections and groupmax activations are refused. The
// directory's name is the hookpoint (Metadata.HookName, e.g. "layers.6", with
// its layer in HookLayer); a training config.json in the parent directory,
// if any, gives the model and dataset names.
func ImportSparsify(dir string) (*SAE, error) {
	if fi, err := os.Stat(dir); err == nil && !fi.IsDir() {
		dir = filepath.Dir(dir)
	}
	cpath := filepath.Join(dir, "cfg.json")
	wpath := filepath.Join(dir, SparsifyWeightsFile)
	fail := func(err error) error { return fmt.Errorf("import sparsify SAE %s: %w", dir, err) }
	data, err := os.ReadFile(cpath)
	if err != nil {
		return nil, fail(err)
	}
	var cfg sparsifyConfig
	if err := json.Unmarshal(data, &cfg); err != nil {
		return nil, fail(fmt.Errorf("%s: expected a sparsify config object: %v", cpath, err))
	}
	switch {
	case cfg.DIn == nil:
		return nil, fail(fmt.Errorf("%s: field d_in is missing: expected the SAE's input width", cpath))
	case *cfg.DIn <= 0:
		return nil, fail(fmt.Errorf("%s: d_in is %d, expected a positive number", cpath, *cfg.DIn))
	case cfg.K == nil:
		return nil, fail(fmt.Errorf("%s: field k is missing: expected the number of active latents", cpath))
	case cfg.Activation != "" && cfg.Activation != "topk":
		return nil, fail(fmt.Errorf("%s: activation %q is not supported: expected topk", cpath, cfg.Activation))
	case cfg.Transcode:
		return nil, fail(fmt.Errorf("%s: transcode is true: a transcoder predicts another site's output and is not an autoencoder rise can run", cpath))
	case cfg.SkipConnection || cfg.EmbedSkip:
		return nil, fail(fmt.Errorf("%s: the SAE has a skip connection, which rise's forward pass does not have: expected skip_connection and embed_skip false", cpath))
	case cfg.GramLookup:
		return nil, fail(fmt.Errorf("%s: gram_lookup is true: the SAE expects an n-gram table subtracted from its input, which rise does not have", cpath))
	case cfg.Signed:
		return nil, fail(fmt.Errorf("%s: signed is true: expected an unsigned TopK SAE", cpath))
	}
	din := *cfg.DIn
	dsae := cfg.NumLatents
	if dsae == 0 && cfg.ExpansionFactor > 0 {
		dsae = din * cfg.ExpansionFactor
	}

	st, err := openSafetensors(wpath)
	if err != nil {
		return nil, fail(err)
	}
	defer st.close()
	if dsae == 0 { // neither num_latents nor expansion_factor: take the tensors' word
		if e := st.entries["encoder.bias"]; e != nil && len(e.shape) == 1 {
			dsae = e.shape[0]
		} else {
			return nil, fail(fmt.Errorf("%s: neither num_latents nor expansion_factor is set, and encoder.bias does not give d_sae", cpath))
		}
	}
	if *cfg.K <= 0 || *cfg.K > dsae {
		return nil, fail(fmt.Errorf("%s: k is %d, expected a value between 1 and d_sae %d", cpath, *cfg.K, dsae))
	}
	want := map[string][]int{"encoder.weight": {dsae, din}, "encoder.bias": {dsae}, "W_dec": {dsae, din}, "b_dec": {din}}
	for _, name := range st.order {
		if _, ok := want[name]; !ok {
			if name == "W_skip" {
				return nil, fail(fmt.Errorf("%s: holds a skip connection W_skip, which rise's forward pass does not have", wpath))
			}
			return nil, fail(fmt.Errorf("%s: unexpected tensor %q: expected encoder.weight, encoder.bias, W_dec and b_dec", wpath, name))
		}
	}
	got := map[string][]float32{}
	for _, name := range []string{"encoder.weight", "encoder.bias", "W_dec", "b_dec"} {
		e := st.entries[name]
		if e == nil {
			return nil, fail(fmt.Errorf("%s: tensor %s is missing, expected %s %s", wpath, name, name, dimNames(name, din, dsae)))
		}
		if !slices.Equal(e.shape, want[name]) {
			return nil, fail(fmt.Errorf("%s: %s has shape %s, expected %s from %s", wpath, name, shapeList(e.shape), dimNames(name, din, dsae), cpath))
		}
		t, err := st.read(name)
		if err != nil {
			return nil, fail(err)
		}
		got[name] = t.Data
	}
	s := &SAE{
		Arch: TopK, DIn: din, DSae: dsae, K: *cfg.K,
		WEnc: make([]float32, din*dsae), WDec: got["W_dec"], BEnc: got["encoder.bias"], BDec: got["b_dec"],
		ApplyBDecToInput: true, InputScale: 1, Normalization: activations.NormNone,
	}
	enc := got["encoder.weight"]
	for j := range dsae {
		for i := range din {
			s.WEnc[i*dsae+j] = enc[j*din+i]
		}
	}
	s.Metadata.HookName = filepath.Base(filepath.Clean(dir))
	if m := layerPattern.FindStringSubmatch(s.Metadata.HookName); m != nil {
		if l, err := strconv.Atoi(m[1]); err == nil {
			s.Metadata.HookLayer = l
		}
	}
	if tc, err := os.ReadFile(filepath.Join(filepath.Dir(filepath.Clean(dir)), "config.json")); err == nil {
		// The training run's config is provenance only; a missing or odd
		// one does not stop the import.
		var run struct {
			Model   string `json:"model"`
			Dataset string `json:"dataset"`
		}
		if json.Unmarshal(tc, &run) == nil {
			s.Metadata.ModelName, s.Metadata.Dataset = run.Model, run.Dataset
		}
	}
	if err := s.Check(); err != nil {
		return nil, fail(fmt.Errorf("%s: %w", wpath, err))
	}
	return s, nil
}

// LoadAny reads an SAE in whichever format path holds: a SAELens directory
// (cfg.json + sae_weights.safetensors), a sparsify directory
// (sae.safetensors + cfg.json), or a Gemma Scope params.npz (the file, or a
// directory holding it). path may also name one of those files.
func LoadAny(path string) (*SAE, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("load SAE: %w", err)
	}
	if !fi.IsDir() {
		base := filepath.Base(path)
		switch {
		case base == SAELensWeightsFile || base == SAELensConfigFile || base == SparsifyWeightsFile:
			return LoadAny(filepath.Dir(path))
		case strings.HasSuffix(strings.ToLower(base), ".npz"):
			return ImportGemmaScope(path)
		}
		return nil, fmt.Errorf("load SAE %s: unrecognised file: expected a SAELens or sparsify directory, its cfg.json or .safetensors file, or a Gemma Scope params.npz", path)
	}
	switch {
	case fileExists(filepath.Join(path, SAELensWeightsFile)):
		return Load(path)
	case fileExists(filepath.Join(path, SparsifyWeightsFile)):
		return ImportSparsify(path)
	case fileExists(filepath.Join(path, GemmaScopeFile)):
		return ImportGemmaScope(filepath.Join(path, GemmaScopeFile))
	}
	return nil, fmt.Errorf("load SAE %s: no SAE found: expected %s + %s (SAELens), %s + cfg.json (sparsify) or %s (Gemma Scope)",
		path, SAELensConfigFile, SAELensWeightsFile, SparsifyWeightsFile, GemmaScopeFile)
}
