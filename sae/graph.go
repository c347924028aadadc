package sae

import (
	"errors"
	"fmt"
	"hash"
	"hash/fnv"
	"math"
	"sync"

	"github.com/chewxy/hm"
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/rise-interp/rise/internal/matmul"
)

// The graph engine writes each architecture's training objective (see
// LossConfig) as a gorgonia expression graph over float32 tensors and takes
// its gradients from gorgonia's reverse-mode differentiation. It is the
// reference the fused engine is held to, and the place to try a new
// architecture: the graph reads like the objective.
//
// The parameters W_enc, W_dec, b_enc, b_dec (and log θ for JumpReLU) are
// input nodes, and so is the batch. What is not differentiable is computed
// outside the graph from the pre-activations and fed in as constants for the
// step: the TopK and BatchTopK selections (Gao et al. 2024, arXiv
// 2406.04093; Bussmann et al. 2024, arXiv 2412.06410), the AuxK selection
// among dead latents (Gao et al. 2024, §A.2), and JumpReLU's step masks and
// straight-through coefficients (Rajamanoharan et al. 2024, arXiv
// 2407.14435).
//
// A straight-through estimator needs a term whose value is zero and whose
// derivative is chosen. With stop(v), the identity whose derivative is zero,
// and δθ = θ - stop(θ) (value 0, ∂δθ/∂θ = 1):
//
//	f = pre ⊙ M + δθ ⊙ C    M = H(pre - θ), C = -(θ/ε)·rect((pre-θ)/ε)
//	h = M + δθ ⊙ D          D = -(1/ε)·rect((pre-θ)/ε)
//
// so that f = pre ⊙ M and h = M in value, while ∂f/∂θ = C, ∂h/∂θ = D,
// ∂f/∂pre = M and ∂h/∂pre = 0: exactly the estimators LossConfig defines.
// θ = exp(log θ) inside the graph, so the gradient reaches log θ.
//
// A latent is active in a row when its activation f is positive; fired and
// Loss.L0 count those. For BatchTopK, Loss.BatchThreshold is the smallest
// positive activation the batch selection kept (SAELens's topk_threshold
// update ignores zeros).
//
// A built graph and its compiled tape machine are cached by architecture,
// sizes, batch rows and which terms the objective has, and re-used across
// steps by copying the step's values into the tensors bound to the inputs.

// graphMaxCached bounds the graphs an engine keeps. Training needs one for
// full batches and one for the last, partial batch of an epoch (times the
// warm-up's λ = 0 variant); beyond the bound the cache starts afresh.
const graphMaxCached = 8

// graphEngine is the Engine built on gorgonia's autodiff.
type graphEngine struct {
	mu     sync.Mutex
	graphs map[graphKey]*graphSAE
}

// graphBLASOnce routes gorgonia's float32 matrix products through the
// package's BLAS (OpenBLAS under -tags openblas) once.
var graphBLASOnce sync.Once

// graphBLAS is gorgonia's BLAS: the package's float32 BLAS, and gonum's
// for the other types, which the graph never uses. The float32 methods
// are promoted from the shallower embedded field.
type graphBLAS struct {
	blas.Float32
	graphGonumBLAS
}

// graphGonumBLAS nests gonum's BLAS one level deeper than blas.Float32 in
// graphBLAS, so that its float32 methods do not collide.
type graphGonumBLAS struct{ gonum.Implementation }

// NewGraphEngine returns the engine that computes every architecture's
// objective as a gorgonia expression graph and its gradients by gorgonia's
// automatic differentiation. It is the reference implementation; the fused
// engine is the fast one.
func NewGraphEngine() Engine {
	graphBLASOnce.Do(func() {
		G.Use(graphBLAS{Float32: matmul.Impl()})
	})
	return &graphEngine{graphs: make(map[graphKey]*graphSAE)}
}

// Name returns "graph".
func (*graphEngine) Name() string { return "graph" }

// Step computes the loss of batch x and its gradients; see Engine.
func (e *graphEngine) Step(s *SAE, x []float32, cfg LossConfig, dead []bool, g *Gradients, fired []int64) (Loss, error) {
	if err := graphCheckStep(s, x, dead, g, fired); err != nil {
		return Loss{}, fmt.Errorf("sae: graph engine: %w", err)
	}
	rows := len(x) / s.DIn
	nDead := 0
	for _, d := range dead {
		if d {
			nDead++
		}
	}
	key := graphKey{
		arch: s.Arch, dIn: s.DIn, dSae: s.DSae, rows: rows,
		centre:   s.ApplyBDecToInput,
		sparsity: (s.Arch == Standard || s.Arch == JumpReLU) && cfg.Sparsity != 0,
		auxK:     (s.Arch == TopK || s.Arch == BatchTopK) && cfg.AuxKCoeff != 0 && nDead > 0,
	}

	e.mu.Lock()
	defer e.mu.Unlock()
	sg, err := e.graph(key)
	if err != nil {
		return Loss{}, fmt.Errorf("sae: graph engine: %w", err)
	}
	loss := sg.bind(s, x, cfg, dead, nDead)
	if err := sg.run(); err != nil {
		return Loss{}, fmt.Errorf("sae: graph engine: %s step on %d rows: %w", s.Arch, rows, err)
	}
	if err := sg.read(&loss, g, fired); err != nil {
		return Loss{}, fmt.Errorf("sae: graph engine: %w", err)
	}
	return loss, nil
}

// graph returns the cached graph for key, building it on first use.
func (e *graphEngine) graph(key graphKey) (*graphSAE, error) {
	if sg, ok := e.graphs[key]; ok {
		return sg, nil
	}
	sg, err := graphBuild(key)
	if err != nil {
		return nil, err
	}
	if len(e.graphs) >= graphMaxCached {
		for k, old := range e.graphs {
			old.vm.Close()
			delete(e.graphs, k)
		}
	}
	e.graphs[key] = sg
	return sg, nil
}

// graphCheckStep verifies that a step's arguments fit together (checkStep),
// and what the graph needs besides: a known architecture and finite
// weights (SAE.Check), and positive JumpReLU thresholds, whose logarithm
// the graph takes.
func graphCheckStep(s *SAE, x []float32, dead []bool, g *Gradients, fired []int64) error {
	if err := checkStep(s, x, g, dead, fired); err != nil {
		return err
	}
	if _, err := ParseArch(string(s.Arch)); err != nil {
		return err
	}
	if err := s.Check(); err != nil {
		return err
	}
	if s.Arch == JumpReLU {
		for j, t := range s.Threshold {
			if !(t > 0) {
				return fmt.Errorf("jumprelu threshold %d is %v, expected a positive value (θ = exp(log θ))", j, t)
			}
		}
	}
	return nil
}

// graphKey names the structure of a graph: everything that changes its
// shape or its terms. Values (weights, batch, coefficients) are bound anew
// at each step.
type graphKey struct {
	arch      Arch
	dIn, dSae int
	rows      int  // batch rows B
	centre    bool // subtract b_dec from the input (ApplyBDecToInput)
	sparsity  bool // λ ≠ 0: the L1 (standard) or L0 (jumprelu) term is in the objective
	auxK      bool // AuxK is on and some latents are dead (topk, batchtopk)
}

// graphSAE is one built objective: its graph, its compiled tape machine,
// the nodes the engine binds and reads, and the tensors bound to its
// inputs.
type graphSAE struct {
	key graphKey
	vm  G.VM

	// Parameters.
	wEnc, wDec, bEnc, bDec, logTheta *G.Node
	// Step inputs: the scaled batch, the selections, the coefficients.
	x, mask, auxMask, step, steF, steH *G.Node
	lambda, auxScale                   *G.Node
	// Outputs: the loss terms, the rows in which each latent fired and the
	// gradients, in the order W_enc, W_dec, b_enc, b_dec, log θ.
	mse, sparsity, auxK, fires *G.Node
	grads                      G.Nodes

	// The tensors bound to the input nodes, by node.
	bound map[*G.Node]*tensor.Dense
	// Scratch for the selections.
	xc, pre, relu []float32
	idx, deadIdx  []int
	deadPre       []float32
}

// graphBuild builds and compiles the objective for key.
func graphBuild(k graphKey) (sg *graphSAE, err error) {
	// gorgonia.Must panics on a construction error; the shapes here are the
	// engine's own, so a panic is a bug in this file, reported as an error.
	defer func() {
		if r := recover(); r != nil {
			sg, err = nil, fmt.Errorf("building the %s graph for d_in %d, d_sae %d, %d rows: %v", k.arch, k.dIn, k.dSae, k.rows, r)
		}
	}()
	B, d, m := k.rows, k.dIn, k.dSae
	g := G.NewGraph()
	sg = &graphSAE{key: k, bound: make(map[*G.Node]*tensor.Dense)}
	matrix := func(r, c int, name string) *G.Node {
		n := G.NewMatrix(g, G.Float32, G.WithShape(r, c), G.WithName(name))
		sg.bindTensor(n, r, c)
		return n
	}
	vector := func(r int, name string) *G.Node {
		n := G.NewVector(g, G.Float32, G.WithShape(r), G.WithName(name))
		sg.bindTensor(n, r)
		return n
	}
	scalar := func(v float32, name string) *G.Node {
		return G.NewScalar(g, G.Float32, G.WithName(name), G.WithValue(v))
	}
	must := func(n *G.Node, err error) *G.Node { return G.Must(n, err) }
	add := func(a, b *G.Node) *G.Node { return must(G.Add(a, b)) }
	sub := func(a, b *G.Node) *G.Node { return must(G.Sub(a, b)) }
	mul := func(a, b *G.Node) *G.Node { return must(G.Mul(a, b)) }          // matrix product, or by a scalar
	had := func(a, b *G.Node) *G.Node { return must(G.HadamardProd(a, b)) } // elementwise product
	sum := func(a *G.Node, along ...int) *G.Node { return must(G.Sum(a, along...)) }
	sq := func(a *G.Node) *G.Node { return must(G.Square(a)) }
	relu := func(a *G.Node) *G.Node { return must(G.Rectify(a)) }
	// Row-vector broadcasts: v [n] against every row of a [B, n].
	addRow := func(a, v *G.Node) *G.Node { return must(G.BroadcastAdd(a, v, nil, []byte{0})) }
	mulRow := func(a, v *G.Node) *G.Node { return must(G.BroadcastHadamardProd(a, v, nil, []byte{0})) }

	sg.x = matrix(B, d, "x")
	sg.wEnc = matrix(d, m, "W_enc")
	sg.wDec = matrix(m, d, "W_dec")
	sg.bEnc = vector(m, "b_enc")
	sg.bDec = vector(d, "b_dec")
	perRow := scalar(float32(1/float64(B)), "1/B")
	zero := scalar(0, "0")

	// pre = (x - b_dec) W_enc + b_enc, written x W_enc + (b_enc - b_dec W_enc)
	// so that b_dec's gradient is a matrix-vector product rather than the
	// gradient with respect to the whole centred batch.
	bias := sg.bEnc
	if k.centre {
		bias = sub(sg.bEnc, mul(sg.bDec, sg.wEnc))
	}
	pre := addRow(mul(sg.x, sg.wEnc), bias)

	var f, sparsity *G.Node
	switch k.arch {
	case Standard:
		// f = ReLU(pre); sparsity = λ (1/B) Σ_b Σ_j f_bj ||W_dec[j]||
		f = relu(pre)
		if k.sparsity {
			sg.lambda = scalar(0, "λ")
			decNorm := must(G.Sqrt(sum(sq(sg.wDec), 1)))
			sparsity = mul(sg.lambda, mul(perRow, sum(mul(f, decNorm))))
		}
	case TopK, BatchTopK:
		// f = ReLU(pre) ⊙ mask, the mask being the step's selection.
		sg.mask = matrix(B, m, "mask")
		f = had(relu(pre), sg.mask)
	case JumpReLU:
		sg.logTheta = vector(m, "log θ")
		sg.step = matrix(B, m, "M")
		sg.steF = matrix(B, m, "C")
		theta := must(G.Exp(sg.logTheta))
		dTheta := sub(theta, graphStop(theta))
		// f = pre ⊙ M + δθ ⊙ C
		f = add(had(pre, sg.step), mulRow(sg.steF, dTheta))
		if k.sparsity {
			// sparsity = λ (1/B) Σ_b Σ_j h_bj, h = M + δθ ⊙ D
			sg.steH = matrix(B, m, "D")
			sg.lambda = scalar(0, "λ")
			h := add(sg.step, mulRow(sg.steH, dTheta))
			sparsity = mul(sg.lambda, mul(perRow, sum(h)))
		}
	default:
		return nil, fmt.Errorf("unknown architecture %q", k.arch)
	}

	// x_hat = f W_dec + b_dec; MSE = (1/B) Σ_b ||x_hat_b - x_b||²
	xhat := addRow(mul(f, sg.wDec), sg.bDec)
	sg.mse = mul(perRow, sum(sq(sub(xhat, sg.x))))
	total := sg.mse
	if sparsity != nil {
		sg.sparsity = sparsity
		total = add(total, sparsity)
	}
	if k.auxK {
		// AuxK = α·s·(1/B) Σ_b ||a_b W_dec - e_b||², a = ReLU(pre) ⊙ A,
		// e = stop(x - x_hat).
		sg.auxMask = matrix(B, m, "A")
		sg.auxScale = scalar(0, "α·s")
		e := graphStop(sub(sg.x, xhat))
		a := had(relu(pre), sg.auxMask)
		sg.auxK = mul(sg.auxScale, mul(perRow, sum(sq(sub(mul(a, sg.wDec), e)))))
		total = add(total, sg.auxK)
	}
	// fires_j = Σ_b [f_bj > 0]
	sg.fires = sum(must(G.Gt(f, zero, true)), 0)

	wrt := G.Nodes{sg.wEnc, sg.wDec, sg.bEnc, sg.bDec}
	if sg.logTheta != nil {
		wrt = append(wrt, sg.logTheta)
	}
	if sg.grads, err = G.Grad(total, wrt...); err != nil {
		return nil, fmt.Errorf("differentiating the %s objective: %w", k.arch, err)
	}

	// The program computes only what the outputs need (not, say, the
	// gradient with respect to the batch). The tape machine re-uses
	// registers; TraceExec with a watch list copies the outputs into their
	// nodes after each run.
	outputs := G.Nodes{sg.mse, sg.fires}
	for _, n := range append(G.Nodes{sg.sparsity, sg.auxK}, sg.grads...) {
		if n != nil {
			outputs = append(outputs, n)
		}
	}
	inputs := g.ExactSubgraphRoots(outputs...).Inputs()
	prog, locMap, err := G.CompileFunction(g, inputs, outputs)
	if err != nil {
		return nil, fmt.Errorf("compiling the %s graph: %w", k.arch, err)
	}
	watch := make([]any, len(outputs))
	for i, n := range outputs {
		watch[i] = n
	}
	sg.vm = G.NewTapeMachine(g, G.WithPrecompiled(prog, locMap), G.TraceExec(), G.WithWatchlist(watch...))

	sg.xc = make([]float32, B*d)
	sg.pre = make([]float32, B*m)
	return sg, nil
}

// bindTensor binds a zero tensor of the given shape to input node n; the
// engine later overwrites its values in place.
func (sg *graphSAE) bindTensor(n *G.Node, shape ...int) {
	size := 1
	for _, s := range shape {
		size *= s
	}
	t := tensor.New(tensor.WithShape(shape...), tensor.WithBacking(make([]float32, size)))
	if err := G.Let(n, t); err != nil {
		panic(err)
	}
	sg.bound[n] = t
}

// data is the backing slice of the tensor bound to input node n.
func (sg *graphSAE) data(n *G.Node) []float32 {
	return sg.bound[n].Data().([]float32)
}

// bind copies the step's parameters, scaled batch, selections and
// coefficients into the graph's inputs. It returns the parts of the loss
// found while selecting (BatchThreshold).
func (sg *graphSAE) bind(s *SAE, x []float32, cfg LossConfig, dead []bool, nDead int) Loss {
	k := sg.key
	B, m := k.rows, k.dSae
	copy(sg.data(sg.wEnc), s.WEnc)
	copy(sg.data(sg.wDec), s.WDec)
	copy(sg.data(sg.bEnc), s.BEnc)
	copy(sg.data(sg.bDec), s.BDec)
	c := s.InputScale
	if c == 0 {
		c = 1
	}
	xs := sg.data(sg.x)
	for i, v := range x {
		xs[i] = c * v
	}
	sg.let(sg.lambda, cfg.Sparsity)

	var loss Loss
	if k.arch == Standard {
		return loss
	}
	// The selections are made on the pre-activations computed outside the
	// graph, with the SAE's own forward pass.
	s.PreActivations(x, sg.xc, sg.pre)
	switch k.arch {
	case TopK:
		mask := sg.data(sg.mask)
		clear(mask)
		for r := range B {
			sg.idx = topKIndices(sg.pre[r*m:(r+1)*m], s.K, sg.idx)
			for _, j := range sg.idx {
				mask[r*m+j] = 1
			}
		}
	case BatchTopK:
		loss.BatchThreshold = sg.selectBatchTopK(s.K * B)
	case JumpReLU:
		sg.jumpCoefficients(s, cfg.bandwidth())
	}
	if k.auxK {
		sg.selectAuxK(s, cfg, dead, nDead)
	}
	return loss
}

// let binds scalar value v to node n, when the graph has n.
func (sg *graphSAE) let(n *G.Node, v float32) {
	if n != nil {
		if err := G.Let(n, v); err != nil {
			panic(err) // n is a float32 scalar node of this graph
		}
	}
}

// selectBatchTopK marks in the mask the kb largest ReLU'd pre-activations
// of the batch (ties by the lower row-major index) and returns the smallest
// positive one among them, the batch threshold (Bussmann et al. 2024).
func (sg *graphSAE) selectBatchTopK(kb int) float32 {
	if len(sg.relu) != len(sg.pre) {
		sg.relu = make([]float32, len(sg.pre))
	}
	for i, v := range sg.pre {
		sg.relu[i] = max(v, 0)
	}
	mask := sg.data(sg.mask)
	clear(mask)
	sg.idx = topKIndices(sg.relu, kb, sg.idx)
	threshold := float32(0)
	for _, i := range sg.idx {
		mask[i] = 1
		if v := sg.relu[i]; v > 0 && (threshold == 0 || v < threshold) {
			threshold = v
		}
	}
	return threshold
}

// selectAuxK marks, per row, the k_aux largest pre-activations among the
// dead latents (ties by the lower index), k_aux = min(AuxKLatents, dead),
// and binds α·min(dead/AuxKLatents, 1) (Gao et al. 2024, §A.2).
func (sg *graphSAE) selectAuxK(s *SAE, cfg LossConfig, dead []bool, nDead int) {
	m := sg.key.dSae
	kAuxCfg := cfg.auxKLatents(s)
	kAux := min(kAuxCfg, nDead)
	sg.deadIdx = sg.deadIdx[:0]
	for j, d := range dead {
		if d {
			sg.deadIdx = append(sg.deadIdx, j)
		}
	}
	if cap(sg.deadPre) < nDead {
		sg.deadPre = make([]float32, nDead)
	}
	sg.deadPre = sg.deadPre[:nDead]
	mask := sg.data(sg.auxMask)
	clear(mask)
	for r := range sg.key.rows {
		row := sg.pre[r*m : (r+1)*m]
		for i, j := range sg.deadIdx {
			sg.deadPre[i] = row[j]
		}
		sg.idx = topKIndices(sg.deadPre, kAux, sg.idx)
		for _, i := range sg.idx {
			mask[r*m+sg.deadIdx[i]] = 1
		}
	}
	scale := min(float32(nDead)/float32(kAuxCfg), 1)
	sg.let(sg.auxScale, cfg.AuxKCoeff*scale)
}

// jumpCoefficients binds log θ, the step mask M = H(pre - θ) and the
// straight-through coefficients C = -(θ/ε)·rect((pre-θ)/ε) and
// D = -(1/ε)·rect((pre-θ)/ε), rect(u) = 1 for |u| < 1/2 (Rajamanoharan et
// al. 2024, §4).
func (sg *graphSAE) jumpCoefficients(s *SAE, eps float32) {
	m := sg.key.dSae
	logTheta := sg.data(sg.logTheta)
	for j, t := range s.Threshold {
		logTheta[j] = float32(math.Log(float64(t)))
	}
	step, cf := sg.data(sg.step), sg.data(sg.steF)
	var ch []float32 // D, when the L0 term is in the objective
	if sg.steH != nil {
		ch = sg.data(sg.steH)
	}
	for i, v := range sg.pre {
		t := s.Threshold[i%m]
		step[i], cf[i] = 0, 0
		if v > t {
			step[i] = 1
		}
		inWindow := false
		if u := (v - t) / eps; u > -0.5 && u < 0.5 {
			inWindow = true
			cf[i] = -t / eps
		}
		if ch != nil {
			ch[i] = 0
			if inWindow {
				ch[i] = -1 / eps
			}
		}
	}
}

// run executes the compiled graph once.
func (sg *graphSAE) run() error {
	sg.vm.Reset()
	return sg.vm.RunAll()
}

// read copies the loss terms, fired counts and gradients out of the graph.
func (sg *graphSAE) read(loss *Loss, g *Gradients, fired []int64) error {
	var err error
	scalar := func(n *G.Node) float64 {
		if n == nil || err != nil {
			return 0
		}
		v, ok := n.Value().Data().(float32)
		if !ok {
			err = fmt.Errorf("node %s holds %T, expected a float32 scalar", n.Name(), n.Value().Data())
		}
		return float64(v)
	}
	loss.MSE = scalar(sg.mse)
	loss.Sparsity = scalar(sg.sparsity)
	loss.AuxK = scalar(sg.auxK)
	loss.Total = loss.MSE + loss.Sparsity + loss.AuxK
	if err != nil {
		return err
	}

	fires, ok := sg.fires.Value().Data().([]float32)
	if !ok || len(fires) != sg.key.dSae {
		return fmt.Errorf("fired counts hold %T, expected %d float32 values", sg.fires.Value().Data(), sg.key.dSae)
	}
	var active float64
	for j, v := range fires {
		active += float64(v)
		if fired != nil {
			fired[j] += int64(v)
		}
	}
	loss.L0 = active / float64(sg.key.rows)

	dst := [][]float32{g.WEnc, g.WDec, g.BEnc, g.BDec, g.LogThreshold}
	for i, n := range sg.grads {
		v, ok := n.Value().Data().([]float32)
		if !ok || len(v) != len(dst[i]) {
			return fmt.Errorf("gradient node %s holds %T, expected %d float32 values", n.Name(), n.Value().Data(), len(dst[i]))
		}
		copy(dst[i], v)
	}
	return nil
}

// graphStop returns stop(n): the value of n, through which no gradient
// flows.
func graphStop(n *G.Node) *G.Node {
	return G.Must(G.ApplyOp(graphStopOp{}, n))
}

// graphStopOp is the identity with a zero derivative. gorgonia has none;
// DiffWRT reporting its input as not differentiable keeps reverse-mode
// differentiation from passing through it.
type graphStopOp struct{}

// Arity is 1.
func (graphStopOp) Arity() int { return 1 }

// Type is a → a.
func (graphStopOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	return hm.NewFnType(a, a)
}

// InferShape returns the input's shape.
func (graphStopOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s, ok := in[0].(tensor.Shape)
	if !ok {
		return nil, fmt.Errorf("stop: input shape is %T, expected a tensor.Shape", in[0])
	}
	return s.Clone(), nil
}

// Do returns a copy of the input.
func (graphStopOp) Do(in ...G.Value) (G.Value, error) { return G.CloneValue(in[0]) }

// UsePreallocDo copies the input into prealloc.
func (graphStopOp) UsePreallocDo(prealloc G.Value, in ...G.Value) (G.Value, error) {
	return G.Copy(prealloc, in[0])
}

// ReturnsPtr is false: Do returns a copy.
func (graphStopOp) ReturnsPtr() bool { return false }

// CallsExtern is false.
func (graphStopOp) CallsExtern() bool { return false }

// OverwritesInput is -1: the input is left alone.
func (graphStopOp) OverwritesInput() int { return -1 }

// WriteHash writes the op's name.
func (graphStopOp) WriteHash(h hash.Hash) { h.Write([]byte("stop")) }

// Hashcode hashes the op's name.
func (op graphStopOp) Hashcode() uint32 {
	h := fnv.New32a()
	op.WriteHash(h)
	return h.Sum32()
}

// String is "stop".
func (graphStopOp) String() string { return "stop" }

// DiffWRT reports the input as not differentiable.
func (graphStopOp) DiffWRT(int) []bool { return []bool{false} }

// SymDiff is never called, as DiffWRT reports nothing differentiable.
func (graphStopOp) SymDiff(G.Nodes, *G.Node, *G.Node) (G.Nodes, error) {
	return nil, errors.New("stop has no derivative")
}

// Sgemm sends gorgonia's float32 matrix products through gemm, which splits
// large products across cores when the BLAS underneath is single-threaded.
func (graphBLAS) Sgemm(tA, tB blas.Transpose, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	matmul.Gemm(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}
