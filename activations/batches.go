package activations

import (
	"context"
	"fmt"
	"math/rand/v2"
)

// BatchOptions choose how Batches walks a layer.
type BatchOptions struct {
	Size int // rows per batch (required)

	// Shuffle visits the rows in a random order fixed by Seed. Rows are read
	// in chunks of ChunkRows consecutive rows; chunks are taken in a random
	// permutation of the whole layer (so every shard is mixed with every
	// other), PoolRows rows at a time, and the rows of a pool are shuffled
	// before they are cut into batches. Memory is the pool plus one batch,
	// whatever the size of the dump.
	Shuffle   bool
	Seed      uint64
	ChunkRows int // default 64
	PoolRows  int // default max(4*Size, 8192), at most about 64 MiB of rows

	// Start and End restrict the walk to rows [Start, End); End 0 means
	// the last row. A held-out split is a row range.
	Start, End int

	// DropLast leaves out a final batch shorter than Size.
	DropLast bool

	// Normalizer, when set, is applied to every batch.
	Normalizer *Normalizer
}

// Batches iterates over a layer in batches. The slices it returns are reused
// by the next call to Next.
//
//	it := layer.Batches(activations.BatchOptions{Size: 1024, Shuffle: true, Seed: 1})
//	for it.Next(ctx) {
//		x := it.X() // it.Len() rows of layer.DModel values
//	}
//	if err := it.Err(); err != nil { ... }
type Batches struct {
	l   *Layer
	opt BatchOptions
	d   int

	x    []float32 // current batch
	ids  []int     // layer row of each row of x
	n    int       // rows in the current batch
	err  error
	done bool

	next    int // sequential: next row to read
	scratch []byte

	// shuffled walk
	perm    []int // chunk order
	chunk   int   // next index into perm
	pool    []float32
	poolIDs []int
	order   []int // shuffled order of the pool's rows
	pos     int   // next index into order
	rng     *rand.Rand

	skipping   bool  // Skip: keep the order, leave the rows unread
	poolRead   bool  // the pool's rows have been read
	poolChunks []int // first row of each chunk in the pool
}

// Batches starts a walk over the layer's rows.
func (l *Layer) Batches(opt BatchOptions) *Batches {
	b := &Batches{l: l, opt: opt, d: l.DModel}
	if opt.Size <= 0 {
		b.err = fmt.Errorf("layer %s: batch size must be positive, got %d", l.Name, opt.Size)
		return b
	}
	if b.opt.End == 0 {
		b.opt.End = l.Rows
	}
	if b.opt.Start < 0 || b.opt.End > l.Rows || b.opt.Start > b.opt.End {
		b.err = fmt.Errorf("layer %s: row range [%d, %d) is outside the layer's %d rows", l.Name, opt.Start, b.opt.End, l.Rows)
		return b
	}
	b.x = make([]float32, opt.Size*b.d)
	b.ids = make([]int, opt.Size)
	b.next = b.opt.Start
	if opt.Shuffle {
		b.initShuffle()
	}
	return b
}

func (b *Batches) initShuffle() {
	o := &b.opt
	if o.ChunkRows <= 0 {
		o.ChunkRows = 64
	}
	if o.PoolRows <= 0 {
		o.PoolRows = max(4*o.Size, 8192)
		limit := max(o.Size, (64<<20)/(4*b.d))
		o.PoolRows = min(o.PoolRows, limit)
	}
	o.PoolRows = max(o.PoolRows, o.ChunkRows)
	rows := o.End - o.Start
	chunks := (rows + o.ChunkRows - 1) / o.ChunkRows
	b.rng = rand.New(rand.NewPCG(o.Seed, 0x9e3779b97f4a7c15))
	b.perm = b.rng.Perm(chunks)
	b.pool = make([]float32, 0, (o.PoolRows+o.ChunkRows)*b.d)
}

// Next reads the next batch. It returns false at the end of the walk, on an
// error and when ctx is done; Err tells which.
func (b *Batches) Next(ctx context.Context) bool {
	if b.err != nil || b.done {
		return false
	}
	if err := ctx.Err(); err != nil {
		b.err = err
		return false
	}
	if b.opt.Shuffle {
		b.fillShuffled()
	} else {
		b.fillSequential()
	}
	if b.err != nil {
		return false
	}
	if b.n == 0 || (b.opt.DropLast && b.n < b.opt.Size) {
		b.done = true
		return false
	}
	if b.opt.Normalizer != nil {
		b.opt.Normalizer.Apply(b.x[:b.n*b.d])
	}
	return true
}

func (b *Batches) fillSequential() {
	n := min(b.opt.Size, b.opt.End-b.next)
	b.n = 0
	if n <= 0 {
		return
	}
	if err := b.l.readRows(b.next, b.x[:n*b.d], &b.scratch); err != nil {
		b.err = err
		return
	}
	for i := range n {
		b.ids[i] = b.next + i
	}
	b.next += n
	b.n = n
}

func (b *Batches) fillShuffled() {
	d := b.d
	b.n = 0
	for b.n < b.opt.Size {
		if b.pos == len(b.order) && !b.refill() {
			return
		}
		if !b.skipping && !b.poolRead && !b.readPool() {
			return
		}
		take := min(b.opt.Size-b.n, len(b.order)-b.pos)
		for _, r := range b.order[b.pos : b.pos+take] {
			if !b.skipping {
				copy(b.x[b.n*d:(b.n+1)*d], b.pool[r*d:(r+1)*d])
			}
			b.ids[b.n] = b.poolIDs[r]
			b.n++
		}
		b.pos += take
	}
}

// refill takes the next chunks of the permutation into the pool, reads
// them (unless skipping) and shuffles the pool's order. It returns false
// when every chunk has been used.
func (b *Batches) refill() bool {
	if b.chunk == len(b.perm) {
		return false
	}
	o := &b.opt
	b.poolChunks = b.poolChunks[:0]
	b.poolIDs = b.poolIDs[:0]
	for b.chunk < len(b.perm) && len(b.poolIDs) < o.PoolRows {
		start := o.Start + b.perm[b.chunk]*o.ChunkRows
		b.chunk++
		b.poolChunks = append(b.poolChunks, start)
		for i := range min(o.ChunkRows, o.End-start) {
			b.poolIDs = append(b.poolIDs, start+i)
		}
	}
	b.poolRead = false
	if !b.skipping && !b.readPool() {
		return false
	}
	b.order = b.order[:0]
	for i := range b.poolIDs {
		b.order = append(b.order, i)
	}
	b.rng.Shuffle(len(b.order), func(i, j int) { b.order[i], b.order[j] = b.order[j], b.order[i] })
	b.pos = 0
	return true
}

// readPool reads the rows of the pool's chunks.
func (b *Batches) readPool() bool {
	o, d := &b.opt, b.d
	b.pool = b.pool[:0]
	for _, start := range b.poolChunks {
		n := min(o.ChunkRows, o.End-start)
		at := len(b.pool)
		b.pool = b.pool[:at+n*d]
		if err := b.l.readRows(start, b.pool[at:], &b.scratch); err != nil {
			b.err = err
			return false
		}
	}
	b.poolRead = true
	return true
}

// Skip advances the walk past n batches without reading or decoding their
// rows, leaving it exactly where n calls to Next would (a resumed training
// run uses it to continue its data order). It returns false if the walk
// ends first.
func (b *Batches) Skip(n int) bool {
	for range n {
		if b.err != nil || b.done {
			return false
		}
		if b.opt.Shuffle {
			b.skipping = true
			b.fillShuffled()
			b.skipping = false
		} else {
			b.n = min(b.opt.Size, b.opt.End-b.next)
			b.next += max(0, b.n)
		}
		if b.err != nil {
			return false
		}
		if b.n == 0 || (b.opt.DropLast && b.n < b.opt.Size) {
			b.done = true
			return false
		}
	}
	return true
}

// X returns the current batch: Len() rows of DModel values, row-major.
func (b *Batches) X() []float32 { return b.x[:b.n*b.d] }

// Rows returns the layer row index of each row of the current batch.
func (b *Batches) Rows() []int { return b.ids[:b.n] }

// Len returns the number of rows in the current batch.
func (b *Batches) Len() int { return b.n }

// Err returns the error that ended the walk, if any.
func (b *Batches) Err() error { return b.err }
