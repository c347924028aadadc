package activations

import (
	"bytes"
	"context"
	"fmt"
	"os"
)

// Stack writes a multi-layer dump at dst from single-layer dumps of the same
// steps, such as one recording run per layer: source i becomes layer
// layers[i]. Every source must hold one layer, the same number of rows and
// the same d_model, and byte-identical steps.jsonl files (when any has one);
// the steps and traces of the first source are kept. The manifest's model is
// the first source's. Rows are copied in batches, so memory stays bounded;
// dst is written atomically and an existing dst is an error unless
// overwrite is set.
func Stack(ctx context.Context, dst string, srcs []string, layers []int, overwrite bool) error {
	if len(srcs) == 0 || len(srcs) != len(layers) {
		return fmt.Errorf("stack %s: expected one layer number per source dump, found %d sources and %d layers", dst, len(srcs), len(layers))
	}
	seen := map[int]bool{}
	for _, l := range layers {
		if seen[l] {
			return fmt.Errorf("stack %s: layer %d is given twice", dst, l)
		}
		seen[l] = true
	}
	dumps := make([]*Dump, len(srcs))
	for i, src := range srcs {
		d, err := Open(src)
		if err != nil {
			return err
		}
		defer d.Close()
		dumps[i] = d
		if len(d.Layers) != 1 {
			return fmt.Errorf("stack: %s: expected a dump of one layer, found %d layers", src, len(d.Layers))
		}
		if i > 0 && (d.Rows != dumps[0].Rows || d.DModel != dumps[0].DModel) {
			return fmt.Errorf("stack: %s: expected %d rows of d_model %d like %s, found %d rows of d_model %d",
				src, dumps[0].Rows, dumps[0].DModel, srcs[0], d.Rows, d.DModel)
		}
	}
	first := dumps[0]
	var steps []byte
	for i, d := range dumps {
		if (d.StepsPath == "") != (first.StepsPath == "") {
			return fmt.Errorf("stack: %s has steps.jsonl and %s has none: the sources must record the same steps", srcs[0], srcs[i])
		}
		if d.StepsPath == "" {
			continue
		}
		b, err := os.ReadFile(d.StepsPath)
		if err != nil {
			return err
		}
		if i == 0 {
			steps = b
		} else if !bytes.Equal(b, steps) {
			return fmt.Errorf("stack: %s and %s differ: the sources must record the same steps", first.StepsPath, d.StepsPath)
		}
	}

	w, err := Create(dst, WriterOptions{Model: first.Manifest.Model, DModel: first.DModel, Layers: layers,
		DType: first.Layers[0].DTypes()[0], Overwrite: overwrite})
	if err != nil {
		return err
	}
	fail := func(err error) error {
		w.Abort()
		return fmt.Errorf("stack %s: %w", dst, err)
	}
	if err := copyObjects(first.StepsPath, ReadSteps, w.WriteSteps); err != nil {
		return fail(err)
	}
	if err := copyObjects(first.TracesPath, ReadTraces, w.WriteTraces); err != nil {
		return fail(err)
	}
	for i, d := range dumps {
		it := d.Layers[0].Batches(BatchOptions{Size: 4096})
		for it.Next(ctx) {
			if err := w.WriteRows(layers[i], it.X()); err != nil {
				return fail(err)
			}
		}
		if err := it.Err(); err != nil {
			return fail(err)
		}
		if err := ctx.Err(); err != nil {
			return fail(err)
		}
	}
	return w.Close()
}

// copyObjects reads the JSON-lines file at path with read, when path is
// not empty, and hands its objects to write.
func copyObjects[T any](path string, read func(string) ([]T, error), write func(...T) error) error {
	if path == "" {
		return nil
	}
	objs, err := read(path)
	if err != nil {
		return err
	}
	return write(objs...)
}
