package sae

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	pathpkg "path"
	"slices"
	"strings"

	"github.com/nlpodyssey/gopickle/pickle"
	"github.com/nlpodyssey/gopickle/pytorch"
	"github.com/nlpodyssey/gopickle/types"

	"github.com/rise-interp/rise/internal/files"
	"github.com/rise-interp/rise/internal/memory"
	"github.com/rise-interp/rise/internal/safetensors"
)

// namedTensor is one tensor of a checkpoint, as float32 in row-major order.
type namedTensor struct {
	shape []int
	data  []float32
}

// readSafetensorsAll reads every tensor of a safetensors file as float32;
// integer tensors (such as a stored k) are converted too. The tensors'
// float32 copies are checked to fit in memory first.
func readSafetensorsAll(path string) (map[string]namedTensor, error) {
	st, err := safetensors.Open(path)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	var floats uint64
	for _, name := range st.Names() {
		shape, _ := st.Shape(name)
		n := uint64(1)
		for _, d := range shape {
			n = memory.Product(n, u64(d))
		}
		floats = memory.Sum(floats, n)
	}
	if err := checkMemory(memory.Product(4, floats), path+": its tensors as float32"); err != nil {
		return nil, err
	}
	out := map[string]namedTensor{}
	for _, name := range st.Names() {
		shape, _ := st.Shape(name)
		dtype, _ := st.DType(name)
		switch dtype {
		case safetensors.F32, safetensors.F16, safetensors.BF16, safetensors.F64:
			t, err := st.Read(name)
			if err != nil {
				return nil, err
			}
			out[name] = namedTensor{shape: t.Shape, data: t.Data}
		case "I64", "I32":
			n := 1
			for _, d := range shape {
				n *= d
			}
			size := 8
			if dtype == "I32" {
				size = 4
			}
			raw := make([]byte, n*size)
			if err := st.ReadRaw(name, raw); err != nil {
				return nil, err
			}
			data := make([]float32, n)
			for i := range data {
				var v int64
				for b := size - 1; b >= 0; b-- {
					v = v<<8 | int64(raw[i*size+b])
				}
				if size == 4 {
					v = int64(int32(v))
				}
				data[i] = float32(v)
			}
			out[name] = namedTensor{shape: slices.Clone(shape), data: data}
		default:
			return nil, fmt.Errorf("%s: tensor %s has dtype %s, expected a float or integer type", path, name, dtype)
		}
	}
	return out, nil
}

// torchStorageClasses are the storage types of a PyTorch checkpoint rise
// reads, with their element sizes in bytes.
var torchStorageClasses = map[string]struct {
	class pytorch.StorageClassInterface
	size  uint64
}{
	"FloatStorage": {&pytorch.FloatStorageClass{}, 4}, "HalfStorage": {&pytorch.HalfStorageClass{}, 2},
	"BFloat16Storage": {&pytorch.BFloat16StorageClass{}, 2}, "DoubleStorage": {&pytorch.DoubleStorageClass{}, 8},
	"LongStorage": {&pytorch.LongStorageClass{}, 8}, "IntStorage": {&pytorch.IntStorageClass{}, 4},
}

// readTorchStateDict reads a PyTorch checkpoint written by torch.save of a
// state dict (the zip format of PyTorch 1.6 and later), unpickling
// data.pkl with github.com/nlpodyssey/gopickle and honouring each tensor's
// offset and strides. It resolves the tensors' storages itself, as
// gopickle's pytorch.Load does, but checks each storage's claimed size
// against its archive member before allocating it, so a broken file
// cannot claim more memory than it holds; the members together must fit
// in memory twice over (the storages and their float32 copies). The
// reader's own failures on a broken file are returned as errors.
func readTorchStateDict(path string) (map[string]namedTensor, error) {
	f, fi, err := files.OpenRegular(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return decodeTorchStateDict(path, f, fi.Size())
}

// decodeTorchStateDict is readTorchStateDict on the size bytes of r; path
// names them in errors.
func decodeTorchStateDict(path string, r io.ReaderAt, size int64) (_ map[string]namedTensor, err error) {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return nil, fmt.Errorf("%s: expected a PyTorch checkpoint (a zip archive, torch.save since PyTorch 1.6): %v", path, err)
	}
	var total uint64
	members := map[string]*zip.File{}
	var pkl *zip.File
	for _, m := range zr.File {
		limit := uint64(size)
		if m.Method != zip.Store {
			limit = memory.Product(limit, 1100) // deflate expands at most about 1032 times
		}
		if m.UncompressedSize64 > limit {
			return nil, fmt.Errorf("%s: member %s claims %d bytes, more than an archive of %d bytes can hold (corrupt archive)", path, m.Name, m.UncompressedSize64, size)
		}
		total = memory.Sum(total, m.UncompressedSize64)
		dir, base := pathpkg.Split(m.Name)
		switch {
		case base == "data.pkl" && strings.Count(dir, "/") == 1:
			pkl = m
		case strings.HasSuffix(dir, "/data/"):
			members[base] = m
		}
	}
	if pkl == nil {
		return nil, fmt.Errorf("%s: no data.pkl in the archive: expected a checkpoint written by torch.save", path)
	}
	if err := checkMemory(memory.Product(2, total), path+": its tensors"); err != nil {
		return nil, err
	}
	if pkl.UncompressedSize64 > maxConfigBytes {
		return nil, fmt.Errorf("%s: data.pkl claims %d bytes, expected a state dict's pickle of at most %d", path, pkl.UncompressedSize64, maxConfigBytes)
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%s: broken PyTorch checkpoint: %v", path, r)
		}
	}()
	rc, err := pkl.Open()
	if err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	data, err := io.ReadAll(io.LimitReader(rc, int64(pkl.UncompressedSize64)))
	rc.Close()
	if err != nil {
		return nil, fmt.Errorf("%s: data.pkl: %v", path, err)
	}
	if err := scanPickle(data); err != nil {
		return nil, fmt.Errorf("%s: data.pkl: %w", path, err)
	}
	u := pickle.NewUnpickler(bytes.NewReader(data))
	u.FindClass = func(module, name string) (any, error) {
		if module == "torch._utils" && name == "_rebuild_tensor_v2" {
			return &pytorch.RebuildTensorV2{}, nil
		}
		if c, ok := torchStorageClasses[name]; ok && module == "torch" {
			return c.class, nil
		}
		return nil, fmt.Errorf("class %s.%s is not part of a state dict of tensors rise reads", module, name)
	}
	loaded := map[string]pytorch.StorageInterface{}
	u.PersistentLoad = func(id any) (any, error) {
		t, ok := id.(*types.Tuple)
		if !ok || t.Len() < 5 || t.Get(0) != "storage" {
			return nil, fmt.Errorf("persistent id %v: expected (\"storage\", class, key, location, size)", id)
		}
		class, okc := t.Get(1).(pytorch.StorageClassInterface)
		key, okk := t.Get(2).(string)
		loc, okl := t.Get(3).(string)
		size, oks := t.Get(4).(int)
		if !okc || !okk || !okl || !oks || size < 0 {
			return nil, fmt.Errorf("persistent id %v: expected (\"storage\", class, key, location, size)", id)
		}
		if s, ok := loaded[key]; ok {
			return s, nil
		}
		m, ok := members[key]
		if !ok {
			return nil, fmt.Errorf("storage %s is not in the archive", key)
		}
		var elem uint64
		for _, c := range torchStorageClasses {
			if c.class == class {
				elem = c.size
			}
		}
		if memory.Product(u64(size), elem) != m.UncompressedSize64 {
			return nil, fmt.Errorf("storage %s claims %d elements of %d bytes, its archive member holds %d bytes", key, size, elem, m.UncompressedSize64)
		}
		r, err := m.Open()
		if err != nil {
			return nil, err
		}
		defer r.Close()
		s := class.New(size, loc)
		if err := s.SetFromFileWithSize(r, size); err != nil {
			return nil, fmt.Errorf("storage %s: %v", key, err)
		}
		loaded[key] = s
		return s, nil
	}
	obj, err := u.Load()
	if err != nil {
		return nil, fmt.Errorf("%s: expected a PyTorch state dict: %v", path, err)
	}
	entries := map[string]any{}
	switch d := obj.(type) {
	case *types.OrderedDict:
		for k, e := range d.Map {
			name, ok := k.(string)
			if !ok {
				return nil, fmt.Errorf("%s: state dict key %v is not a string", path, k)
			}
			entries[name] = e.Value
		}
	case *types.Dict:
		for _, e := range *d {
			name, ok := e.Key.(string)
			if !ok {
				return nil, fmt.Errorf("%s: state dict key %v is not a string", path, e.Key)
			}
			entries[name] = e.Value
		}
	default:
		return nil, fmt.Errorf("%s: expected a state dict (a mapping of names to tensors), found %T", path, obj)
	}
	out := map[string]namedTensor{}
	for name, v := range entries {
		t, ok := v.(*pytorch.Tensor)
		if !ok {
			return nil, fmt.Errorf("%s: entry %s is a %T, expected a tensor", path, name, v)
		}
		nt, err := torchTensor(t)
		if err != nil {
			return nil, fmt.Errorf("%s: tensor %s: %w", path, name, err)
		}
		out[name] = nt
	}
	return out, nil
}

// torchTensor gathers a tensor's elements from its storage by offset and
// strides into row-major float32.
func torchTensor(t *pytorch.Tensor) (namedTensor, error) {
	var get func(i int) float32
	var n int
	switch s := t.Source.(type) {
	case *pytorch.FloatStorage:
		get, n = func(i int) float32 { return s.Data[i] }, len(s.Data)
	case *pytorch.HalfStorage:
		get, n = func(i int) float32 { return s.Data[i] }, len(s.Data)
	case *pytorch.BFloat16Storage:
		get, n = func(i int) float32 { return s.Data[i] }, len(s.Data)
	case *pytorch.DoubleStorage:
		get, n = func(i int) float32 { return float32(s.Data[i]) }, len(s.Data)
	case *pytorch.LongStorage:
		get, n = func(i int) float32 { return float32(s.Data[i]) }, len(s.Data)
	case *pytorch.IntStorage:
		get, n = func(i int) float32 { return float32(s.Data[i]) }, len(s.Data)
	default:
		return namedTensor{}, fmt.Errorf("storage %T is not a number type rise reads (float32, float16, bfloat16, float64, int64, int32)", t.Source)
	}
	if len(t.Size) != len(t.Stride) {
		return namedTensor{}, fmt.Errorf("has %d dimensions but %d strides", len(t.Size), len(t.Stride))
	}
	count := 1
	last := t.StorageOffset // the largest storage index the tensor reaches
	for i, d := range t.Size {
		if d < 0 || t.Stride[i] < 0 || (d > 0 && count > math.MaxInt32/d) {
			return namedTensor{}, fmt.Errorf("has size %v and strides %v, expected non-negative ones", t.Size, t.Stride)
		}
		count *= d
		if d > 0 {
			last += (d - 1) * t.Stride[i]
		}
	}
	if t.StorageOffset < 0 || (count > 0 && last >= n) {
		return namedTensor{}, fmt.Errorf("size %v, strides %v and offset %d reach past its storage of %d elements", t.Size, t.Stride, t.StorageOffset, n)
	}
	data := make([]float32, count)
	idx := make([]int, len(t.Size))
	for k := range data {
		off := t.StorageOffset
		for i, v := range idx {
			off += v * t.Stride[i]
		}
		data[k] = get(off)
		for i := len(idx) - 1; i >= 0; i-- {
			idx[i]++
			if idx[i] < t.Size[i] {
				break
			}
			idx[i] = 0
		}
	}
	return namedTensor{shape: slices.Clone(t.Size), data: data}, nil
}

// scanPickle walks the opcodes of a pickle (protocols 0 to 5, after
// Python's pickletools) and checks that every length an opcode gives lies
// within the data, before an unpickler allocates by it; an unknown opcode
// or data past STOP's reach is an error.
func scanPickle(b []byte) error {
	i := 0
	need := func(n uint64) error {
		if n > uint64(len(b)-i) {
			return fmt.Errorf("opcode at byte %d claims %d bytes, %d remain (truncated or corrupt pickle)", i, n, len(b)-i)
		}
		return nil
	}
	line := func() error {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return fmt.Errorf("opcode at byte %d: no end of line (truncated pickle)", i)
		}
		i += j + 1
		return nil
	}
	for i < len(b) {
		op := b[i]
		i++
		var err error
		switch op {
		case '.': // STOP
			return nil
		case '(', '0', '1', '2', 'N', 0x88, 0x89, ']', 'a', 'e', 'l', ')', 't', 0x85, 0x86, 0x87, '}', 'd', 's', 'u',
			0x8f, 0x90, 0x91, 'o', 0x81, 0x92, 'R', 'b', 0x93, 0x94, 'Q', 0x97, 0x98:
		case 'K', 'h', 'q', 0x80, 0x82: // one-byte argument
			err = need(1)
			i++
		case 'M', 0x83:
			err = need(2)
			i += 2
		case 'J', 'j', 'r', 0x84:
			err = need(4)
			i += 4
		case 'G':
			err = need(8)
			i += 8
		case 0x95: // FRAME: an 8-byte length, then the frame's opcodes
			err = need(8)
			i += 8
		case 0x8a, 'U', 'C', 0x8c: // one-byte length, then data
			if err = need(1); err == nil {
				n := uint64(b[i])
				i++
				if err = need(n); err == nil {
					i += int(n)
				}
			}
		case 0x8b, 'T', 'B', 'X': // four-byte length, then data
			if err = need(4); err == nil {
				n := uint64(binary.LittleEndian.Uint32(b[i:]))
				i += 4
				if err = need(n); err == nil {
					i += int(n)
				}
			}
		case 0x96, 0x8d, 0x8e: // eight-byte length, then data
			if err = need(8); err == nil {
				n := binary.LittleEndian.Uint64(b[i:])
				i += 8
				if err = need(n); err == nil {
					i += int(n)
				}
			}
		case 'I', 'L', 'S', 'V', 'F', 'g', 'p', 'P':
			err = line()
		case 'c', 'i':
			if err = line(); err == nil {
				err = line()
			}
		default:
			return fmt.Errorf("unknown pickle opcode 0x%02x at byte %d", op, i-1)
		}
		if err != nil {
			return err
		}
	}
	return fmt.Errorf("no STOP opcode: truncated pickle")
}
