# The two set-up commands are `make run` and `make test`; see README.md.

GO      ?= go
BIN     := bin/rise
VERSION := $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
LDFLAGS := -X main.version=$(VERSION)
ADDR    ?= 127.0.0.1:8080

# OpenBLAS makes the engines' matrix products several times faster. When
# libopenblas-dev is installed (pkg-config knows openblas, or libopenblas.so
# is in a system library directory) and cgo works, build, test and bench
# link it with -tags openblas; otherwise rise stays pure Go. OPENBLAS=0
# forces pure Go.
OPENBLAS ?= $(shell [ "$$($(GO) env CGO_ENABLED 2>/dev/null)" = 1 ] && \
	{ pkg-config --exists openblas 2>/dev/null || ls /usr/lib/*/libopenblas.so /usr/lib/libopenblas.so /usr/lib64/libopenblas.so /usr/local/lib/libopenblas.so 2>/dev/null | grep -q .; } && \
	echo 1 || echo 0)
ifeq ($(OPENBLAS),1)
TAGS := -tags openblas
export CGO_LDFLAGS := $(or $(shell pkg-config --libs openblas 2>/dev/null),-lopenblas)
endif

.PHONY: all build run test test-blas vet bench fuzz testdata clean

all: build

build:
	$(GO) build $(TAGS) -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/rise

# run builds rise and serves the workbench on the built-in demo (ADDR=host:port to move it).
run: build
	$(BIN) serve --addr $(ADDR)

vet:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change: $$out"; exit 1; fi
	$(GO) vet $(TAGS) ./...
	$(GO) vet ./...

test: vet
	$(GO) test $(TAGS) -count=1 ./...

# test-blas runs the tests of the packages whose numbers go through BLAS
# (CI runs it again without OpenBLAS, as go install builds rise).
test-blas:
	$(GO) test $(TAGS) -count=1 ./sae/ ./steer/

# bench runs every benchmark (BENCH=Name narrows them down), then rise bench:
# the engines' speed at full size against the PyTorch reference, when
# python3 can import torch. BENCHFLAGS passes flags to rise bench.
BENCH ?= .
BENCHFLAGS ?=
bench: build
	$(GO) test $(TAGS) -run '^$$' -bench '$(BENCH)' -benchmem ./...
	$(BIN) bench $(BENCHFLAGS)

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
