package main

import (
	"context"
	"flag"
	"fmt"
	"runtime"
	"runtime/debug"
)

// version is set at link time by the Makefile (-X main.version=...); a
// go-installed binary reports its module version instead.
var version = ""

func versionString() string {
	v := version
	if v == "" {
		v = "devel"
		if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
	}
	return fmt.Sprintf("rise %s %s %s/%s", v, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

func init() {
	register(&command{
		name:    "version",
		noArgs:  true,
		summary: "print the version of rise and of Go it was built with",
		help:    "Example:\n\n\trise version",
		run: func(_ context.Context, e *env, _ *flag.FlagSet) error {
			fmt.Fprintln(e.stdout, versionString())
			return nil
		},
	})
}
