package main

import (
	"context"
	"flag"
	"fmt"
	"math"
	"path/filepath"
	"sort"
	"strings"

	"github.com/rise-interp/rise/activations"
	"github.com/rise-interp/rise/internal/atomicfile"
	"github.com/rise-interp/rise/steer"
	"github.com/rise-interp/rise/steer/model"
)

func init() {
	var (
		specPath, format, out, hint, modelPath string
		blocks                                 int
		fx                                     featureExport
	)
	register(&command{
		name:    "export",
		summary: "export a steering spec (GGUF control vectors, .npy), an SAE's features for Neuronpedia, or an HTML feature dashboard",
		usage: "--steer SPEC.json --format gguf|npy --out FILE [--model-hint NAME] [--model PATH | --layers N]\n" +
			"  rise export --neuronpedia --sae SAE --data DUMP --out DIR [--model-id ID] [--source-set NAME] [--features 1,2,3 | --top N --by frequency|max|f1]\n" +
			"  rise export --dashboard --sae SAE --data DUMP --out FILE.html (--features 1,2,3 | --top N --by frequency|max|f1) [--model PATH]",
		help: `Writes the vectors of a steering spec for other tools.

gguf: a control-vector file as llama.cpp reads it (--control-vector FILE):
general.architecture "controlvector", controlvector.model_hint,
controlvector.layer_count, and one F32 tensor direction.L per steered layer
L (the output of block L, from 0; llama.cpp cannot steer block 0), holding
the sum of strength × unit direction of the spec's vectors at that layer.
Only "add" at positions "all" is what a control vector does; other operators
and position policies are refused rather than exported as something else.

npy: float32 [vectors, d_model], row i = strength × unit direction of vector
i, in the spec's order.

--model checks the spec against a model (width, layers) and names it in the
GGUF's model hint. A GGUF needs one of --model or --layers N (the model's
number of blocks): llama.cpp silently drops a direction.L the model has no
block for, so a layer out of range is refused here instead.

Example:

	rise export --steer reflect.json --format gguf --out reflect.gguf --model-hint qwen2 --layers 28
` + featureExportHelp,
		setFlags: func(fs *flag.FlagSet) {
			fs.StringVar(&specPath, "steer", "", "the steering spec (required)")
			fs.StringVar(&format, "format", "gguf", "gguf or npy")
			fs.StringVar(&out, "out", "", "the file to write (required)")
			fs.StringVar(&hint, "model-hint", "", "controlvector.model_hint (default: the model's architecture, or \"llama\")")
			fs.StringVar(&modelPath, "model", "", "a model to check the spec against (--dashboard, --neuronpedia: the model of the logit lens)")
			fs.IntVar(&blocks, "layers", 0, "the model's number of blocks, to check the spec's layers against (instead of --model)")
			fx.setFlags(fs)
		},
		run: func(ctx context.Context, e *env, fs *flag.FlagSet) error {
			if fs.NArg() > 0 {
				return usagef("expected no arguments, found %q", fs.Arg(0))
			}
			if fx.neuronpedia || fx.dashboard {
				if specPath != "" {
					return usagef("--steer exports a steering spec; --neuronpedia and --dashboard export an SAE's features: give one")
				}
				return fx.run(ctx, e, out, modelPath)
			}
			if specPath == "" || out == "" {
				return usagef("--steer and --out are required")
			}
			if format != "gguf" && format != "npy" {
				return usagef("--format: expected gguf or npy, found %q", format)
			}
			switch {
			case blocks < 0:
				return usagef("--layers: expected the model's number of blocks, found %d", blocks)
			case blocks > 0 && modelPath != "":
				return usagef("give --model or --layers, not both (--model says how many layers the model has)")
			case format == "gguf" && blocks == 0 && modelPath == "":
				return usagef("a GGUF control vector needs --model or --layers N (the model's number of blocks): llama.cpp ignores layers the model lacks without a word, so they are checked here")
			}
			spec, err := steer.ReadSpec(specPath)
			if err != nil {
				return err
			}
			dim, layers := 0, math.MaxInt32
			if blocks > 0 {
				layers = blocks
			}
			if modelPath != "" {
				m, err := model.LoadModel(modelPath)
				if err != nil {
					return err
				}
				dim, layers = m.Dim, m.Layers
				if hint == "" {
					hint = m.Arch
				}
			} else {
				d, err := steer.LoadDirection(spec.Vectors[0].Source)
				if err != nil {
					return fmt.Errorf("%s: vector 0: %w", specPath, err)
				}
				dim = len(d)
			}
			vs, err := spec.Resolve(dim, layers)
			if err != nil {
				return fmt.Errorf("%s: %w", specPath, err)
			}
			if format == "npy" {
				rows := make([]float32, 0, len(vs)*dim)
				for _, v := range vs {
					for _, x := range v.Dir {
						rows = append(rows, float32(v.Strength)*x)
					}
				}
				if err := atomicfile.Write(out, activations.EncodeNpy(rows, len(vs), dim)); err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "wrote %s: %d vectors of %d values\n", out, len(vs), dim)
				return nil
			}
			if hint == "" {
				hint = model.ArchLlama
			}
			cv := steer.ControlVector{ModelHint: hint, Layers: map[int][]float32{}}
			for i, v := range vs {
				if v.Op != steer.OpAdd || v.Positions != steer.PosAll {
					return fmt.Errorf("%s: vector %d is %s at %s positions: a GGUF control vector adds at every position, so only op \"add\" with positions \"all\" can be exported (export it as npy instead)",
						specPath, i, v.Op, v.Positions)
				}
				sum := cv.Layers[v.Layer]
				if sum == nil {
					sum = make([]float32, dim)
					cv.Layers[v.Layer] = sum
				}
				for j, x := range v.Dir {
					sum[j] += float32(v.Strength) * x
				}
			}
			if err := steer.WriteGGUFFile(out, cv); err != nil {
				return err
			}
			var nums []int
			for l := range cv.Layers {
				nums = append(nums, l)
			}
			sort.Ints(nums)
			var ls []string
			for _, l := range nums {
				ls = append(ls, fmt.Sprint(l))
			}
			fmt.Fprintf(e.stdout, "wrote %s: control vector for %s, layers %s, %d values each\n", filepath.Base(out), hint, strings.Join(ls, ","), dim)
			return nil
		},
	})
}
