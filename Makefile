# strata — the two commands a newcomer types:
#   make run    installs what is missing, builds, and runs the demo on a default store
#   make test   installs what is missing and passes the tests
SWIFT ?= swift
DEMO_ROOT ?= $(CURDIR)/.demo

.PHONY: run test build release setup demo example bench clean

setup:
	@bash tools/setup

build: setup
	$(SWIFT) build

# The release binary links the Swift runtime and Foundation statically: start-up drops from
# ~20 ms to ~14 ms (fewer dynamic relocations), which every CLI call pays. The benchmarks
# in tools/bench build and use this same binary.
release: setup
	$(SWIFT) build -c release --static-swift-stdlib --scratch-path .build-release

# `make run` installs only what building and running strata needs; the test peers (podman,
# buildah, skopeo, dive, the docker CLI …) belong to `make test`.
run:
	@bash tools/setup --run
	$(SWIFT) build
	@bash tools/demo "$(DEMO_ROOT)"

# check-example first: tools/rootless-test (run by swift test) runs the embed example as a user.
test: setup
	$(SWIFT) build --build-tests
	@bash tools/check-example
	$(SWIFT) test --skip-build

bench: release
	@bash tools/bench/load-save
	@bash tools/bench/listings

clean:
	rm -rf .build .demo
