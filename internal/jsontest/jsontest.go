// Package jsontest reads the JSON files tests check: golden values,
// fixtures and what a command wrote. Only tests import it.
package jsontest

import (
	"encoding/json"
	"os"
	"testing"
)

// ReadFile decodes the JSON file at path into v, failing the test when the
// file cannot be read or decoded.
func ReadFile(t testing.TB, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
