# Sight: the two commands a user needs are `make run` and `make test`.
# Everything goes through CMake in build/ (build-asan/ for the sanitizer run).

BUILD       ?= build
JOBS        ?= $(shell nproc)
# Debian's interpreter: python3-pytest and python3-httpx are installed for it.
PYTHON      ?= /usr/bin/python3
# Where the test suite finds the shared test material (models, photos). Only tests use it.
SIGHT_SHARED ?= $(abspath ../shared)
export SIGHT_SHARED

.PHONY: all build run test test-unit test-integration test-asan test-tsan analyze fuzz bench load clean bootstrap install deb format format-check

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
	@$(MAKE) --no-print-directory test BUILD=build-asan CMAKE_ARGS="-DSIGHT_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug $(CMAKE_ARGS)"

# ThreadSanitizer (gcc's -fsanitize=thread; it cannot share a build with ASan): everything
# built in build-tsan/, then the unit tests that start threads and the integration tests of
# TSAN_TESTS, chosen so that every thread of docs/internals/threads.md runs while requests
# come and go. TSan reports go to build-tsan/tsan/ (each sightd also exits 66 after one, so
# the test that saw it fails) and any report fails the target. tests/tsan.supp lists the
# uninstrumented libraries whose own synchronisation TSan cannot see, each with why.
# Time on the 2-core development machine (load about 6): 5 min 18 s with build-tsan up to
# date (unit tests 7 s, the 30 integration tests 5 min 4 s); building build-tsan from
# scratch took 4.5 min more.
# Which test runs which thread (besides the main thread, acceptor, HTTP workers, key-check
# workers, key-cache watcher, store probe and ledger writer that every server runs):
#   test_predict_v1 (8 tests) CPU workers; connection watcher (streams, a client that leaves,
#                             slow clients); deadline reaper (--client-timeout); /readyz reads
#                             the store probe; a revoked key (key-cache watcher); SIGTERM drain
#   test_stream_backpressure  connection watcher with a client that is behind or never reads
#   test_hostile (2 tests)    deadline reaper: header deadline, minimum body rate
#   test_v2 (3 tests)         URL fetcher (libcurl multi), batch bodies
#   test_llm (3 tests)        LLM workers (streamed deltas, a cancelled call, the gate)
#   test_limits (3 tests)     ledger writer (usage), key-check limit jobs, key updates
#   test_redis_limits (2)     deferred limit calls and the Redis refresher, across 3 nodes
#   test_jobs (3 tests)       job runner, webhook sender
#   test_models (1 test)      model reloader (SIGHUP under load)
#   test_faults (1 test)      SIGTERM under load: every thread's stop, in order
#   test_tls (1 test)         the HTTP workers over TLS with keep-alive
TSAN_TESTS ?= tests/integration/test_predict_v1.py::test_three_images_stream_processing_done_error_complete \
  tests/integration/test_predict_v1.py::test_files_and_metadata_in_any_interleaving \
  tests/integration/test_predict_v1.py::test_key_in_headers \
  tests/integration/test_predict_v1.py::test_revoked_key_is_refused_within_a_second_by_a_running_server \
  tests/integration/test_predict_v1.py::test_health_ready_metrics \
  tests/integration/test_predict_v1.py::test_client_disconnect_mid_stream_cancels_and_frees_the_request \
  tests/integration/test_predict_v1.py::test_slow_clients_do_not_block_others \
  tests/integration/test_predict_v1.py::test_sigterm_lets_running_streams_finish_then_exits_0 \
  tests/integration/test_stream_backpressure.py \
  tests/integration/test_hostile.py::test_slowloris_headers_are_cut_by_the_header_deadline_while_others_are_served \
  tests/integration/test_hostile.py::test_slow_body_is_cut_by_the_minimum_rate_while_others_are_served \
  tests/integration/test_v2.py::test_v2_streams_like_v1 \
  tests/integration/test_v2.py::test_downloads_run_concurrently \
  tests/integration/test_v2.py::test_batch_v2 \
  tests/integration/test_llm.py::test_deltas_stream_before_the_answer_ends \
  tests/integration/test_llm.py::test_client_disconnect_cancels_the_provider_call \
  tests/integration/test_llm.py::test_concurrency_gate \
  tests/integration/test_limits.py::test_usage_equals_what_was_served \
  tests/integration/test_limits.py::test_concurrency_with_a_long_stream_open \
  tests/integration/test_limits.py::test_keys_update_reaches_a_running_server_within_a_second \
  tests/integration/test_redis_limits.py::test_rate_is_shared_by_three_nodes \
  tests/integration/test_redis_limits.py::test_concurrency_cap_across_nodes_with_streams_open \
  tests/integration/test_jobs.py::test_job_flow_events_results_and_usage \
  tests/integration/test_jobs.py::test_cancel_stops_items_not_started \
  tests/integration/test_jobs.py::test_webhook_is_signed_and_retried \
  tests/integration/test_models.py::test_sighup_reloads_under_load_without_a_failure \
  tests/integration/test_faults.py::test_sigterm_under_load_ends_every_stream_properly \
  tests/integration/test_tls.py::test_curl_and_httpx_over_https_with_keep_alive \
  tests/integration/test_frontend.py::test_ten_thousand_idle_connections \
  tests/integration/test_frontend.py::test_a_thousand_v2_streams_on_a_slow_image_host \
  tests/integration/test_smuggling.py::test_refusals_are_counted_and_the_server_goes_on \
  tests/integration/test_pg_store.py::test_server_on_postgres_limits_and_usage \
  tests/integration/test_pg_store.py::test_two_nodes_share_keys_and_ledger
TSAN_UNIT    = work_queue|ticker|block_reuse|conn_guard|event_queue|key_cache|keystore|ledger|limits|pipeline
TSAN_OPTS    = suppressions=$(abspath tests/tsan.supp) log_path=$(abspath build-tsan)/tsan/report \
  exitcode=66 second_deadlock_stack=1 $(TSAN_OPTIONS)
test-tsan:
	@scripts/bootstrap --test
	@$(MAKE) --no-print-directory build BUILD=build-tsan CMAKE_ARGS="-DSIGHT_TSAN=ON $(CMAKE_ARGS)"
	@rm -rf build-tsan/tsan && mkdir -p build-tsan/tsan
	@export TSAN_OPTIONS="$(TSAN_OPTS)" SIGHT_TEST_START_S=120; st=0; \
	  (cd build-tsan && ctest --output-on-failure -j $(JOBS) -R 'unit_($(TSAN_UNIT))$$') || st=1; \
	  SIGHTD=$(abspath build-tsan)/sightd $(PYTHON) -m pytest -q $(TSAN_TESTS) $(PYTEST_ARGS) || st=1; \
	  if ls build-tsan/tsan/report.* >/dev/null 2>&1; then \
	    cat build-tsan/tsan/report.*; echo "make test-tsan: ThreadSanitizer reports above (build-tsan/tsan/)" >&2; st=1; fi; \
	  exit $$st

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
	@cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=$(FUZZ_CC) -DSIGHT_FUZZ=ON -DCMAKE_BUILD_TYPE=Debug $(CMAKE_ARGS) \
	  -DORT_ROOT=$$(cat .deps/ort-root) >/dev/null
	@cmake --build build-fuzz -j $(JOBS) --target $(addprefix fuzz_,$(FUZZ_TARGETS))
	@FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_ARGS="$(FUZZ_ARGS)" scripts/fuzz $(FUZZ_TARGETS)

# clang-format with .clang-format over the C sources: format-check fails on any
# difference (CI runs it first: it is cheap); format rewrites the files in place.
CLANG_FORMAT   ?= clang-format
FORMAT_FILES    = $(sort $(wildcard src/*.[ch] src/*/*.[ch] src/*/*/*.[ch] tests/unit/*.[ch] fuzz/*.[ch]))
format-check:
	@command -v $(CLANG_FORMAT) >/dev/null || scripts/bootstrap --format
	@$(CLANG_FORMAT) --dry-run -Werror $(FORMAT_FILES)
format:
	@command -v $(CLANG_FORMAT) >/dev/null || scripts/bootstrap --format
	@$(CLANG_FORMAT) -i $(FORMAT_FILES)

# Static analysis: cppcheck over src/, tests/unit/ and fuzz/ (about a minute on 2 cores;
# its cache in build-analyze/ makes a second run quicker). Fails on any finding; what is
# suppressed is in tests/analyze/cppcheck.supp or beside the line, each with why. First,
# the engine's fence (tests/analyze/engine_fence): only src/http/front/ may use it.
CPPCHECK ?= cppcheck
analyze:
	@tests/analyze/engine_fence
	@command -v $(CPPCHECK) >/dev/null || scripts/bootstrap --analyze
	@mkdir -p build-analyze
	@$(CPPCHECK) -q -j $(JOBS) --std=c11 --enable=warning,portability --inline-suppr --error-exitcode=1 \
	  -D_GNU_SOURCE -I src --include=tests/analyze/macros.h --suppressions-list=tests/analyze/cppcheck.supp \
	  --cppcheck-build-dir=build-analyze --template='{file}:{line}: {severity}: {id}: {message}' \
	  src tests/unit fuzz

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
	rm -rf build build-asan build-tsan build-fuzz build-analyze
