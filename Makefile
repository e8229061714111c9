# kanbot-sidecar — see README.md. Everything here needs only Go (with cgo: gcc) and make.
GO      ?= go
BIN     := bin
export CGO_ENABLED := 1

.PHONY: all build test test-short fuzz-smoke vet fmt demo bench clean

all: build

build:
	$(GO) build -o $(BIN)/kanbot ./cmd/kanbot
	$(GO) build -o $(BIN)/kanbot-sidecar ./cmd/kanbot-sidecar

# The whole suite: vet, gofmt check, a short fuzz pass, then every test with -race.
test: vet fmt-check fuzz-smoke
	$(GO) test -race -count=1 -timeout 30m ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

fmt:
	gofmt -w $$(git ls-files '*.go')

vet:
	$(GO) vet ./...

# Each fuzz target runs briefly so the harnesses cannot rot; crashers found
# locally are committed under testdata/fuzz/ and replayed by plain `go test`.
FUZZTIME ?= 5s
fuzz-smoke:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  dir=$$($(GO) list -f '{{.Dir}}' $$pkg); \
	  for f in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' $$dir/*_test.go 2>/dev/null | sed 's/^func //'); do \
	    echo "fuzz $$pkg $$f"; \
	    $(GO) test -run '^$$' -fuzz "^$$f\$$" -fuzztime $(FUZZTIME) $$pkg >/dev/null || { echo "fuzz $$f failed"; exit 1; }; \
	  done; \
	done

demo: build
	./examples/demo.sh

bench: build
	$(GO) run ./bench

clean:
	rm -rf $(BIN)
