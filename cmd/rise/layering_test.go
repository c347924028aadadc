package main

import (
	"os/exec"
	"strings"
	"testing"
)

// layerOrder ranks rise's packages by their path's longest listed prefix
// (sae/atlas is sae's, web/report web's): a package may import packages of
// its own rank or lower. internal/ is below all; steer/model, the
// language-model runtime, sits between sae and steer and needs neither.
var layerOrder = []struct {
	prefix string
	rank   int
}{
	{"internal", 0},
	{"activations", 1},
	{"sae", 2},
	{"steer/model", 3},
	{"steer", 4},
	{"web", 5},
	{"cmd", 6},
	{"testdata", 7},
}

func layerRank(pkg string) (int, bool) {
	rel, ok := strings.CutPrefix(pkg, "github.com/rise-interp/rise/")
	if !ok {
		return 0, false
	}
	best, rank := "", 0
	for _, l := range layerOrder {
		if (rel == l.prefix || strings.HasPrefix(rel, l.prefix+"/")) && len(l.prefix) > len(best) {
			best, rank = l.prefix, l.rank
		}
	}
	return rank, best != ""
}

// TestPackagesImportDownwards reads every package's imports with go list:
// activations -> sae -> steer/model -> steer -> web -> cmd, internal/ below
// all, no import back up; and the runtime (steer/model) depends, directly
// or not, on none of sae, steer or web.
func TestPackagesImportDownwards(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", "github.com/rise-interp/rise/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	pkgs := 0
	for line := range strings.Lines(string(out)) {
		fields := strings.Fields(line)
		pr, ok := layerRank(fields[0])
		if !ok {
			t.Errorf("%s: not in a known layer", fields[0])
			continue
		}
		pkgs++
		for _, imp := range fields[1:] {
			if ir, ok := layerRank(imp); ok && ir > pr {
				t.Errorf("%s imports %s, a layer above it", fields[0], imp)
			}
		}
	}
	if pkgs < 20 {
		t.Fatalf("go list named %d packages, expected all of rise's", pkgs)
	}
	deps, err := exec.Command("go", "list", "-deps", "github.com/rise-interp/rise/steer/model").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	for dep := range strings.Lines(string(deps)) {
		dep = strings.TrimSpace(dep)
		if r, ok := layerRank(dep); ok && r != 0 && !strings.HasPrefix(dep, "github.com/rise-interp/rise/steer/model") {
			t.Errorf("steer/model depends on %s", dep)
		}
	}
}
