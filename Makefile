# Sight: the two commands a user needs are `make run` and `make test`.
# Everything goes through CMake in build/ (build-asan/ for the sanitizer run).

BUILD       ?= build
JOBS        ?= $(shell nproc)
# Debian's interpreter: python3-pytest and python3-httpx are installed for it.
PYTHON      ?= /usr/bin/python3
# Where the test suite finds the shared test material (models, photos). Only tests use it.
SIGHT_SHARED ?= $(abspath ../shared)
export SIGHT_SHARED

.PHONY: all build run test test-unit test-integration test-asan bench clean bootstrap

all: build

bootstrap:
	@scripts/bootstrap

build: bootstrap
	@cmake -S . -B $(BUILD) -DORT_ROOT=$$(cat .deps/ort-root) $(CMAKE_ARGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

# Starts the server with working defaults on 127.0.0.1:8080; the first start
# creates an API key and prints it once.
run: build
	@$(BUILD)/sightd serve --create-first-key $(ARGS)

test: export SIGHT_TEST_BUILD = $(abspath $(BUILD))
test:
	@scripts/bootstrap --test
	@$(MAKE) --no-print-directory build
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS)
	@SIGHTD=$(abspath $(BUILD))/sightd $(PYTHON) -m pytest -q tests/integration $(PYTEST_ARGS)

# The same suite, built with AddressSanitizer + UndefinedBehaviorSanitizer.
test-asan:
	@$(MAKE) --no-print-directory test BUILD=build-asan CMAKE_ARGS="-DSIGHT_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug"

bench: build
	@scripts/bench

clean:
	rm -rf build build-asan
