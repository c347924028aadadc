// Package minheap is container/heap over a slice of any element type,
// ordered by a function: one type where each element type would need its
// own Len, Less, Swap, Push and Pop. The heap operations are
// container/heap's, so the order of equal elements is what it gives.
package minheap

import "container/heap"

// Heap holds its elements in heap order, the least (by its less) first.
// Make one with Make; the zero value has no order.
type Heap[T any] struct {
	items []T
	less  func(a, b T) bool
}

// Make returns an empty heap ordered by less.
func Make[T any](less func(a, b T) bool) Heap[T] { return Heap[T]{less: less} }

// Len is the number of elements.
func (h *Heap[T]) Len() int { return len(h.items) }

// Push adds x.
func (h *Heap[T]) Push(x T) { heap.Push((*iface[T])(h), x) }

// Pop removes and returns the least element.
func (h *Heap[T]) Pop() T { return heap.Pop((*iface[T])(h)).(T) }

// Top is the least element; the heap must not be empty.
func (h *Heap[T]) Top() T { return h.items[0] }

// ReplaceTop puts x in the least element's place and restores the order.
func (h *Heap[T]) ReplaceTop(x T) {
	h.items[0] = x
	heap.Fix((*iface[T])(h), 0)
}

// Items returns the elements in heap order (the least first, the rest in
// no useful order); the slice is the heap's own.
func (h *Heap[T]) Items() []T { return h.items }

// Reset empties the heap and lets its memory go.
func (h *Heap[T]) Reset() { h.items = nil }

// iface is Heap seen by container/heap.
type iface[T any] Heap[T]

func (h *iface[T]) Len() int           { return len(h.items) }
func (h *iface[T]) Less(i, j int) bool { return h.less(h.items[i], h.items[j]) }
func (h *iface[T]) Swap(i, j int)      { h.items[i], h.items[j] = h.items[j], h.items[i] }
func (h *iface[T]) Push(x any)         { h.items = append(h.items, x.(T)) }
func (h *iface[T]) Pop() any {
	x := h.items[len(h.items)-1]
	h.items = h.items[:len(h.items)-1]
	return x
}
