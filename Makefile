# objstore: build and test.
#
#   make build   the objstore binary in bin/ (static, CGO_ENABLED=0)
#   make test    the whole suite: vet, unit tests, the remote conformance
#                suite against a directory and a real MinIO server, API tests
#                against real node processes, cluster tests on real
#                processes (a partition among them, on network namespaces),
#                the S3 endpoint driven by real S3 clients, then a few
#                seconds of fuzzing of every decoder and parser that sees
#                network or disk input (scripts/fuzz.sh). It ends with the
#                tests that were skipped and why (gotestsum's summary).
#                MinIO and mc (pinned) are built with `go install` on first
#                use and cached; scripts/test-deps.sh installs iproute2,
#                nftables, iptables, curl, awscli, s3cmd, rclone and chromium from
#                Debian's packages when they are missing.
#   make bench   objstore side by side with nginx's proxy_cache and MinIO
#                direct (and cachenator, given $CACHENATOR_BIN), in a few
#                minutes: hits under wrk, cold GETs, peer reads, PUTs at
#                each level, peak memory; it rewrites its section of
#                docs/benchmarks.md and docs/bench-sidebyside.png. nginx and
#                wrk come from Debian's packages (scripts/bench-deps.sh).
#                Never part of make test.
#   make bench-go  every Go benchmark of the packages (go test -bench).

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
GO      ?= go

.PHONY: build test test-deps vet fuzz bench bench-deps bench-go clean

build:
	CGO_ENABLED=0 $(GO) build -ldflags "-X main.version=$(VERSION)" -o bin/objstore ./cmd/objstore

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }
	$(GO) vet ./...
	$(GO) vet -tags sidebyside ./internal/sidebyside

test-deps:
	@scripts/test-deps.sh

fuzz:
	@GO=$(GO) scripts/fuzz.sh

# gotestsum runs go test and ends with the list of the tests that failed
# and of those that skipped, each with its reason.
GOTESTSUM ?= $(GO) run gotest.tools/gotestsum@v1.13.0

test: test-deps vet
	$(GOTESTSUM) --format standard-quiet -- -count=1 -timeout 40m ./...
	@GO=$(GO) scripts/fuzz.sh

bench-deps:
	@scripts/bench-deps.sh

bench: bench-deps
	$(GO) test -tags sidebyside -run 'TestSideBySide|TestRangedReads' -count=1 -timeout 30m -v ./internal/sidebyside

bench-go:
	$(GO) test -run '^$$' -bench . -benchmem ./...

clean:
	rm -rf bin
