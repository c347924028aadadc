# The two set-up commands are `make run` and `make test`; see README.md.

GO      ?= go
BIN     := bin/rise
VERSION := $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
LDFLAGS := -X main.version=$(VERSION)
DEMO    ?= .rise/demo

.PHONY: all build run test vet bench fuzz testdata clean

all: build

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/rise

# run builds rise and starts it on the built-in demo.
run: build
	$(BIN) demo --dir $(DEMO)

vet:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change: $$out"; exit 1; fi
	$(GO) vet ./...

test: vet
	$(GO) test -count=1 ./...

# bench runs every benchmark; BENCH=Name narrows it down.
BENCH ?= .
bench:
	$(GO) test -run '^$$' -bench '$(BENCH)' -benchmem ./...

# fuzz runs each fuzz target for FUZZTIME.
FUZZTIME ?= 30s
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzNpyHeader -fuzztime $(FUZZTIME) ./activations

# testdata remakes the committed fixture and the golden files that show it.
testdata: build
	$(BIN) synth --out testdata/tiny --rows 400 --d-model 16 --features 32 --seed 7 --force
	$(GO) test ./cmd/rise -run InspectGolden -update

clean:
	rm -rf bin .rise
