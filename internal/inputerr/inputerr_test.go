package inputerr

import (
	"errors"
	"fmt"
	"io"
	"testing"
)

func TestKinds(t *testing.T) {
	if Wrap(nil) != nil {
		t.Fatal("Wrap(nil) must stay nil")
	}
	e := Errorf("layer: expected 0 to %d, found %d", 3, 9)
	if !Is(e) || e.Error() != "layer: expected 0 to 3, found 9" {
		t.Fatalf("Errorf: %v, Is %v", e, Is(e))
	}
	if !Is(fmt.Errorf("vector 2: %w", e)) {
		t.Fatal("a wrapped input error must still be one")
	}
	if Is(io.ErrUnexpectedEOF) || Is(fmt.Errorf("disk: %w", io.ErrUnexpectedEOF)) {
		t.Fatal("other errors are not input errors")
	}
	w := Wrap(io.ErrUnexpectedEOF)
	if !Is(w) || !errors.Is(w, io.ErrUnexpectedEOF) || w.Error() != io.ErrUnexpectedEOF.Error() {
		t.Fatalf("Wrap must keep the error and its chain: %v", w)
	}
	if Wrap(w) != w {
		t.Fatal("wrapping twice adds nothing")
	}
}
