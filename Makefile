# Sight: the two commands a user needs are `make run` and `make test`.
# Everything goes through CMake in build/ (build-asan/ for the sanitizer run).

BUILD       ?= build
JOBS        ?= $(shell nproc)
# Debian's interpreter: python3-pytest and python3-httpx are installed for it.
PYTHON      ?= /usr/bin/python3
# Where the test suite finds the shared test material (models, photos). Only tests use it.
SIGHT_SHARED ?= $(abspath ../shared)
export SIGHT_SHARED

.PHONY: all build run test test-unit test-integration test-asan fuzz bench load clean bootstrap install deb format format-check

all: build

bootstrap:
	@scripts/bootstrap

build: bootstrap
	@cmake -S . -B $(BUILD) -DORT_ROOT=$$(cat .deps/ort-root) $(CMAKE_ARGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

# make install PREFIX=/usr/local DESTDIR=: sightd, its share directory (built-in model, class
# names, OCR models), ONNX Runtime in PREFIX/lib/sight, the systemd unit and an example
# environment file (CMake's install rules).
PREFIX      ?= /usr/local
install: build
	@DESTDIR=$(DESTDIR) cmake --install $(BUILD) --prefix $(PREFIX)

# make deb: a Debian package (prefix /usr) in DEB_OUT, Depends from dpkg-shlibdeps.
DEB_OUT     ?= $(BUILD)
deb: build
	@dpkg-query -W -f='$${Status}' dpkg-dev 2>/dev/null | grep -q "install ok installed" || \
	  { echo "make deb: needs dpkg-dev (dpkg-shlibdeps): sudo apt-get install dpkg-dev" >&2; exit 1; }
	@scripts/mkdeb $(BUILD) $(DEB_OUT)

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

# libFuzzer harnesses (fuzz/) with ASan+UBSan, built with clang-14 in build-fuzz/;
# each runs FUZZ_SECONDS from the seeds in fuzz/corpus/, FUZZ_JOBS at a time (what it
# finds new goes to build-fuzz/corpus/). Fails when any harness crashes; the input is in
# build-fuzz/artifacts/. CI runs it after the tests (.ci/run).
FUZZ_CC      ?= clang-14
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= multipart form_json urlencoded json_out pyrepr sse url image request_check buf video
FUZZ_ARGS    ?=
fuzz:
	@scripts/bootstrap --fuzz
	@echo 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { return 0; }' | \
	  $(FUZZ_CC) -fsanitize=fuzzer,address,undefined -x c - -o /dev/null 2>/dev/null || \
	  { echo "make fuzz: needs $(FUZZ_CC) with libFuzzer: sudo apt-get install clang-14 libclang-rt-14-dev" >&2; exit 1; }
	@cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=$(FUZZ_CC) -DSIGHT_FUZZ=ON -DCMAKE_BUILD_TYPE=Debug \
	  -DORT_ROOT=$$(cat .deps/ort-root) >/dev/null
	@cmake --build build-fuzz -j $(JOBS) --target $(addprefix fuzz_,$(FUZZ_TARGETS))
	@FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_ARGS="$(FUZZ_ARGS)" scripts/fuzz $(FUZZ_TARGETS)

# clang-format with .clang-format over the C sources: format-check fails on any
# difference (CI runs it first: it is cheap); format rewrites the files in place.
CLANG_FORMAT   ?= clang-format
FORMAT_FILES    = $(sort $(wildcard src/*.[ch] src/*/*.[ch] tests/unit/*.[ch] fuzz/*.[ch]))
format-check:
	@command -v $(CLANG_FORMAT) >/dev/null || scripts/bootstrap --format
	@$(CLANG_FORMAT) --dry-run -Werror $(FORMAT_FILES)
format:
	@command -v $(CLANG_FORMAT) >/dev/null || scripts/bootstrap --format
	@$(CLANG_FORMAT) -i $(FORMAT_FILES)

bench: build
	@scripts/bench

# Overload: 2 x MAX_INFLIGHT clients for LOAD_SECONDS against --max-inflight
# MAX_INFLIGHT; fails on anything but complete streams and 429s, a crash, or
# RSS that stays over 10% above idle (scripts/load).
LOAD_SECONDS ?= 60
MAX_INFLIGHT ?= 8
load: build
	@LOAD_SECONDS=$(LOAD_SECONDS) MAX_INFLIGHT=$(MAX_INFLIGHT) scripts/load

clean:
	rm -rf build build-asan build-fuzz
