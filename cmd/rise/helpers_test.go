package main

import (
	"bytes"
	"context"
	"testing"
)

// runRise runs the command line in-process and returns its exit status and
// output.
func runRise(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}
