package sae

import (
	"archive/zip"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/rise-interp/rise/activations"
	"github.com/rise-interp/rise/internal/files"
	"github.com/rise-interp/rise/internal/inputerr"
	"github.com/rise-interp/rise/internal/memory"
	"github.com/rise-interp/rise/internal/safetensors"
	"github.com/rise-interp/rise/internal/ziplayout"
)

// The files that identify the SAE formats rise imports.
const (
	// GemmaScopeFile is a Gemma Scope parameter archive (params.npz).
	GemmaScopeFile = "params.npz"
	// SparsifyWeightsFile holds an EleutherAI sparsify SAE's tensors; its
	// cfg.json sits beside it.
	SparsifyWeightsFile = "sae.safetensors"
)

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
	f, fi, err := files.OpenRegular(path)
	if err != nil {
		return nil, fail(err)
	}
	defer f.Close()
	zr, err := zip.NewReader(f, fi.Size())
	if err != nil {
		return nil, fail(fmt.Errorf("expected a .npz (zip) archive of .npy arrays: %v", err))
	}
	if _, err := ziplayout.Check(zr.File, fi.Size()); err != nil {
		return nil, fail(err)
	}
	// Every array's shape is read first, so that their float32 copies are
	// known to fit in memory before any is allocated.
	var floats uint64
	for _, f := range zr.File {
		n, err := npzMemberElements(f)
		if err != nil {
			return nil, fail(fmt.Errorf("array %s: %w", f.Name, err))
		}
		floats = memory.Sum(floats, n)
	}
	if err := checkMemory(memory.Product(4, floats), "its arrays as float32"); err != nil {
		return nil, fail(err)
	}

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

// npzMemberElements reads the header of an .npz member and returns how many
// elements its array holds.
func npzMemberElements(f *zip.File) (uint64, error) {
	rc, err := f.Open()
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	shape, err := activations.NpyShape(rc)
	if err != nil {
		return 0, err
	}
	n := uint64(1)
	for _, d := range shape {
		n = memory.Product(n, u64(d))
	}
	return n, nil
}

// readNpzMember reads one .npy member of an .npz archive: a float16,
// float32 or float64 array of one or two dimensions. The member's declared
// size is bounded by what an archive of archiveSize bytes can hold before it
// is trusted, and the array's header is checked against it before the data
// is allocated.
func readNpzMember(f *zip.File, archiveSize int64) (npyData, error) {
	limit := archiveSize
	if f.Method != zip.Store {
		limit = archiveSize * 1100 // deflate expands at most about 1032 times
	}
	size := int64(f.UncompressedSize64)
	if size < 0 || size > limit {
		return npyData{}, fmt.Errorf("member claims %d bytes, more than an archive of this size can hold (corrupt archive)", f.UncompressedSize64)
	}
	rc, err := f.Open()
	if err != nil {
		return npyData{}, err
	}
	defer rc.Close()
	data, shape, err := activations.ReadNpyArray(rc, size)
	if err != nil {
		return npyData{}, err
	}
	return npyData{shape: shape, data: data}, nil
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

// importConfig starts an import from a directory of config and weights
// files: it takes the directory of path (path itself, or the directory of
// a file in it), reads its JSON config file into cfg, and returns the
// directory, the config's path and the wrapper of the import's errors
// ("import KIND SAE DIR: ...").
func importConfig(path, kind, config, what string, cfg any) (dir, cpath string, fail func(error) error, err error) {
	dir = path
	if fi, err := os.Stat(dir); err == nil && !fi.IsDir() {
		dir = filepath.Dir(dir)
	}
	cpath = filepath.Join(dir, config)
	fail = func(err error) error { return fmt.Errorf("import %s SAE %s: %w", kind, dir, err) }
	if err := readConfig(cpath, what, cfg); err != nil {
		return dir, cpath, fail, fail(err)
	}
	return dir, cpath, fail, nil
}

// maxConfigBytes bounds the JSON configuration files of an SAE (cfg.json,
// config.json), which hold a few fields and perhaps a training record.
const maxConfigBytes = 64 << 20

// readConfig reads the JSON configuration file at path into cfg; what
// names the object expected ("a sparsify config object") in the error
// about a file that is not one.
func readConfig(path, what string, cfg any) error {
	data, err := files.ReadRegular(path, maxConfigBytes, "a JSON object")
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, cfg); err != nil {
		return fmt.Errorf("%s: expected %s: %v", path, what, err)
	}
	return nil
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
func ImportSparsify(path string) (*SAE, error) {
	var cfg sparsifyConfig
	dir, cpath, fail, err := importConfig(path, "sparsify", "cfg.json", "a sparsify config object", &cfg)
	if err != nil {
		return nil, err
	}
	wpath := filepath.Join(dir, SparsifyWeightsFile)
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
	case cfg.NumLatents < 0 || cfg.NumLatents > math.MaxInt32:
		return nil, fail(fmt.Errorf("%s: num_latents is %d, expected a number from 1 to %d (or 0 to use expansion_factor)", cpath, cfg.NumLatents, math.MaxInt32))
	case *cfg.DIn > math.MaxInt32 || cfg.ExpansionFactor < 0 || cfg.ExpansionFactor > math.MaxInt32 / *cfg.DIn:
		return nil, fail(fmt.Errorf("%s: d_in %d and expansion_factor %d: expected d_in × expansion_factor to be a width from 0 to %d", cpath, *cfg.DIn, cfg.ExpansionFactor, math.MaxInt32))
	}
	din := *cfg.DIn
	dsae := cfg.NumLatents
	if dsae == 0 && cfg.ExpansionFactor > 0 {
		dsae = din * cfg.ExpansionFactor
	}

	st, err := safetensors.Open(wpath)
	if err != nil {
		return nil, fail(err)
	}
	defer st.Close()
	if dsae == 0 { // neither num_latents nor expansion_factor: take the tensors' word
		if shape, ok := st.Shape("encoder.bias"); ok && len(shape) == 1 {
			dsae = shape[0]
		} else {
			return nil, fail(fmt.Errorf("%s: neither num_latents nor expansion_factor is set, and encoder.bias does not give d_sae", cpath))
		}
	}
	if *cfg.K <= 0 || *cfg.K > dsae {
		return nil, fail(fmt.Errorf("%s: k is %d, expected a value between 1 and d_sae %d", cpath, *cfg.K, dsae))
	}
	// encoder.weight, W_dec and W_enc (the transpose of encoder.weight) are
	// d_sae × d_in each; the tensors' bytes are in the file (a sparse file
	// can claim any size), and their float32 copies must fit in memory.
	floats := memory.Sum(memory.Product(3, u64(dsae), u64(din)), u64(dsae), u64(din))
	if err := checkMemory(memory.Product(4, floats), fmt.Sprintf("%s: the tensors of an SAE with d_in %d and d_sae %d (from %s)", wpath, din, dsae, cpath)); err != nil {
		return nil, fail(err)
	}
	want := map[string][]int{"encoder.weight": {dsae, din}, "encoder.bias": {dsae}, "W_dec": {dsae, din}, "b_dec": {din}}
	for _, name := range st.Names() {
		if _, ok := want[name]; !ok {
			if name == "W_skip" {
				return nil, fail(fmt.Errorf("%s: holds a skip connection W_skip, which rise's forward pass does not have", wpath))
			}
			return nil, fail(fmt.Errorf("%s: unexpected tensor %q: expected encoder.weight, encoder.bias, W_dec and b_dec", wpath, name))
		}
	}
	got := map[string][]float32{}
	for _, name := range []string{"encoder.weight", "encoder.bias", "W_dec", "b_dec"} {
		shape, ok := st.Shape(name)
		if !ok {
			return nil, fail(fmt.Errorf("%s: tensor %s is missing, expected %s %s", wpath, name, name, dimNames(name, din, dsae)))
		}
		if !slices.Equal(shape, want[name]) {
			return nil, fail(fmt.Errorf("%s: %s has shape %s, expected %s from %s", wpath, name, shapeList(shape), dimNames(name, din, dsae), cpath))
		}
		t, err := st.Read(name)
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
	// The training run's config is provenance only; a missing or odd one
	// does not stop the import.
	var run struct {
		Model   string `json:"model"`
		Dataset string `json:"dataset"`
	}
	if readConfig(filepath.Join(filepath.Dir(filepath.Clean(dir)), "config.json"), "a training config object", &run) == nil {
		s.Metadata.ModelName, s.Metadata.Dataset = run.Model, run.Dataset
	}
	if err := s.Check(); err != nil {
		return nil, fail(fmt.Errorf("%s: %w", wpath, err))
	}
	return s, nil
}

// LoadAny reads an SAE in whichever format path holds: a SAELens directory
// (cfg.json + sae_weights.safetensors), a sparsify directory
// (sae.safetensors + cfg.json), a Gemma Scope params.npz (the file, or a
// directory holding it), an lm-saes (Llama Scope) directory (config.json +
// sae_weights.safetensors) or a dictionary_learning one (ae.pt or
// ae.safetensors, with config.json). path may also name one of those files. Its errors
// are the caller's (inputerr): the SAE named is missing or broken.
func LoadAny(path string) (_ *SAE, err error) {
	defer func() { err = inputerr.Wrap(err) }()
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("load SAE: %w", err)
	}
	if !fi.IsDir() {
		base := filepath.Base(path)
		switch {
		case base == SAELensWeightsFile || base == SAELensConfigFile || base == SparsifyWeightsFile || base == LlamaScopeConfigFile:
			return LoadAny(filepath.Dir(path))
		case base == DictLearnTorchFile || base == DictLearnSafetensorsFile:
			return ImportDictionaryLearning(path)
		case strings.HasSuffix(strings.ToLower(base), ".npz"):
			return ImportGemmaScope(path)
		}
		return nil, fmt.Errorf("load SAE %s: unrecognised file: expected a SAELens, sparsify, Llama Scope or dictionary_learning directory, its config or weights file, or a Gemma Scope params.npz", path)
	}
	switch {
	case isLlamaScope(path):
		return ImportLlamaScope(path)
	case fileExists(filepath.Join(path, SAELensWeightsFile)):
		return Load(path)
	case fileExists(filepath.Join(path, DictLearnTorchFile)) || fileExists(filepath.Join(path, DictLearnSafetensorsFile)):
		return ImportDictionaryLearning(path)
	case fileExists(filepath.Join(path, SparsifyWeightsFile)):
		return ImportSparsify(path)
	case fileExists(filepath.Join(path, GemmaScopeFile)):
		return ImportGemmaScope(filepath.Join(path, GemmaScopeFile))
	}
	return nil, fmt.Errorf("load SAE %s: no SAE found: expected %s + %s (SAELens), %s + cfg.json (sparsify), %s (Gemma Scope), config.json + %s (Llama Scope, lm-saes) or %s / %s (dictionary_learning)",
		path, SAELensConfigFile, SAELensWeightsFile, SparsifyWeightsFile, GemmaScopeFile, SAELensWeightsFile, DictLearnTorchFile, DictLearnSafetensorsFile)
}
