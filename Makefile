# p2pgrid: build, run, test. `make help` lists the targets.

GO        ?= go
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X main.version=$(VERSION)
BUILD     := CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)'
TOOLS     := $(CURDIR)/bin/tools
STATICCHECK_VERSION := v0.8.2
FUZZTIME  ?= 10s
PKGS      := ./...

.PHONY: help build run test test-short bench lint fuzz soak cross clean tools deps

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-11s %s\n", $$1, $$2}'

build: ## build bin/p2pgrid (static, CGO_ENABLED=0, version stamped)
	$(BUILD) -o bin/p2pgrid ./cmd/p2pgrid

run: build ## the main job on embedded defaults: a simulated neighbourhood trading, its dashboard on http://127.0.0.1:8080/ (Ctrl-C stops it)
	bin/p2pgrid demo --http 127.0.0.1:8080 $(RUNFLAGS)

# staticcheck and influxd first: install-deps ends by checking every piece,
# those two included, and prints a line for each.
deps: tools ## install and check what the tests use: Go tools (go install), Debian packages (apt-get)
	scripts/install-influxd
	scripts/install-deps

# Every package under the race detector (it needs cgo: install-deps checks
# gcc). The long property run of the auction, which starts no goroutines,
# runs without it: -race makes it about ten times slower (1 s -> 11 s).
test: deps lint ## everything: lint, unit, property, golden and integration tests, under -race
	CGO_ENABLED=1 $(GO) test -race -count=1 $(PKGS)
	$(GO) test -count=1 -run Property ./auction -rapid.checks=5000

test-short: ## quick unit tests only (-short)
	$(GO) test -short -count=1 $(PKGS)

bench: ## benchmarks (see docs/performance.md)
	$(GO) test -run '^$$' -bench . -benchmem -count=1 $(PKGS)

$(TOOLS)/staticcheck:
	GOBIN=$(TOOLS) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

tools: $(TOOLS)/staticcheck ## install the lint tools into bin/tools

lint: tools ## gofmt check, go vet, staticcheck
	@bad=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$bad" ]; then echo "gofmt would change:"; echo "$$bad"; exit 1; fi
	$(GO) vet $(PKGS)
	$(TOOLS)/staticcheck $(PKGS)

fuzz: ## run every fuzz target for FUZZTIME (default 10s) each
	@set -e; for f in $$(grep -rl --include='*_test.go' '^func Fuzz' .); do \
	  dir=$$(dirname $$f); \
	  for t in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' $$f); do \
	    echo "== $$dir $$t"; $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 2s $$dir; \
	  done; \
	done

soak: ## 200 gateways on Mosquitto for 100 accelerated intervals (about 20 min; docs/performance.md)
	scripts/soak $(SOAKFLAGS)

cross: ## static binaries for the Raspberry Pis: linux/arm64, linux/arm v6 and v7
	GOOS=linux GOARCH=arm64 $(BUILD) -o bin/p2pgrid-linux-arm64 ./cmd/p2pgrid
	GOOS=linux GOARCH=arm GOARM=7 $(BUILD) -o bin/p2pgrid-linux-armv7 ./cmd/p2pgrid
	GOOS=linux GOARCH=arm GOARM=6 $(BUILD) -o bin/p2pgrid-linux-armv6 ./cmd/p2pgrid

clean: ## remove build output
	rm -rf bin/p2pgrid bin/p2pgrid-linux-*

# --- Packages for the Pis (docs/install.md, "Packages") ---------------------

NFPM      ?= $(TOOLS)/nfpm
NFPM_VERSION := v2.48.0
DIST      ?= dist
# VERSION in Debian's form: a tag v1.2.0 gives 1.2.0, git describe's
# v1.2.0-3-gabc1234-dirty gives 1.2.0+3.gabc1234.dirty (later than 1.2.0),
# an untagged abc1234 gives 0.0.0+gitabc1234: a Debian version starts with
# a digit.
DEB_VERSION ?= $(shell printf '%s\n' '$(VERSION)' | sed -E -e 's/^v?([0-9]+\.[0-9])/\1/' -e 't tag' \
	-e 's/-/./g' -e 's/^/0.0.0+git/' -e 'b' -e ':tag' -e 's/-/+/' -e 's/-/./g')

.PHONY: packages deb-version

$(TOOLS)/nfpm:
	GOBIN=$(TOOLS) $(GO) install github.com/goreleaser/nfpm/v2/cmd/nfpm@$(NFPM_VERSION)

# The packaging test builds packages: make deps installs nfpm.
deps: $(NFPM)

# The packaging test packs the binaries of make cross. Built here, before
# go test, compiling for three Pis (minutes on a cold build cache) stays
# out of go test's timeout; the test's own make cross is then a cache hit.
test: cross

# One .deb per binary of make cross, named for the Pi it runs on; both
# 32-bit ones have Debian's architecture armhf.
packages: cross $(NFPM) ## Debian packages for the Pis: dist/p2pgrid_VERSION_{arm64,armv7,armv6}.deb
	@mkdir -p $(DIST)
	@set -e; for p in arm64:arm64 armv7:arm7 armv6:arm6; do \
	  pi=$${p%%:*}; \
	  P2PGRID_BINARY=bin/p2pgrid-linux-$$pi NFPM_ARCH=$${p#*:} P2PGRID_DEB_VERSION='$(DEB_VERSION)' \
	    $(NFPM) package --config packaging/nfpm.yaml --packager deb --target $(DIST)/p2pgrid_$(DEB_VERSION)_$$pi.deb; \
	done

deb-version: # print DEB_VERSION (for the packaging test)
	@echo '$(DEB_VERSION)'

# --- The container image (deploy/README.md) ----------------------------------

PLATFORMS ?= linux/amd64,linux/arm64,linux/arm/v7,linux/arm/v6
IMAGE     ?= p2pgrid:$(VERSION)
BUILDXFLAGS ?=

.PHONY: image

image: ## multi-arch container image with docker buildx (PLATFORMS, IMAGE; deploy/README.md)
	docker buildx build --platform $(PLATFORMS) --build-arg VERSION=$(VERSION) -t $(IMAGE) $(BUILDXFLAGS) .
