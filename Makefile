# vireo's entry points. `make demo` and `make check` install what they need (scripts/setup) on a
# fresh Debian 12 machine, as root.
BUILD      := build
ASAN_BUILD := $(BUILD)/asan
FUZZ_BUILD := $(BUILD)/fuzz
# ccache, when present (scripts/setup installs it): paths are hashed relative to the checkout, so
# every clone on a machine shares one cache (a fresh CI clone rebuilds only what changed).
# Recursive (=): looked up when a recipe runs, after `setup`, so a fresh machine's first build
# uses it too.
export CCACHE_BASEDIR := $(CURDIR)
export CCACHE_NOHASHDIR := true
CMAKE_GEN   = $(if $(shell command -v ccache),-DCMAKE_C_COMPILER_LAUNCHER=ccache \
                -DCMAKE_CXX_COMPILER_LAUNCHER=ccache) -G Ninja
CMAKE_ARGS  = $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVIREO_ASAN_BUILD_DIR=$(CURDIR)/$(ASAN_BUILD) \
              -DVIREO_FUZZ_BUILD_DIR=$(CURDIR)/$(FUZZ_BUILD)

.PHONY: all setup build build-asan build-fuzz fuzz guest nested-host check demo bench format clean

all: build

setup:
	bash scripts/setup

build: setup
	cmake -S . -B $(BUILD) $(CMAKE_ARGS)
	cmake --build $(BUILD)

build-asan: setup
	cmake -S . -B $(ASAN_BUILD) $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=Debug -DVIREO_SANITIZE=ON
	cmake --build $(ASAN_BUILD)

build-fuzz: setup
	CXX=clang++ cmake -S . -B $(FUZZ_BUILD) $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVIREO_FUZZ=ON
	cmake --build $(FUZZ_BUILD) --target kernel_image_fuzzer size_fuzzer legacy_devices_fuzzer pci_fuzzer virt_queue_fuzzer virtio_blk_fuzzer api_request_fuzzer \
	  http_request_head_fuzzer snapshot_file_fuzzer virtio_pci_fuzzer migration_stream_fuzzer

# Longer fuzzing runs (FUZZ_SECONDS per target).
fuzz: build-fuzz guest
	tests/fuzz/run $(FUZZ_BUILD) $${FUZZ_SECONDS:-300}

guest: setup
	tests/guest/build

nested-host: build guest
	tests/nested/build-host

# Unit tests, probe tests, both again under ASan+UBSan, a short fuzzing run, then the nested
# scenarios; tests/lib/run-check makes each prerequisite (timed), runs CTest and prints where the
# time went and which tests needed a retry before the closing "N passed, N failed" line.
check:
	BUILD=$(BUILD) tests/lib/run-check

# The main job: boot the default guest to an interactive busybox shell (inside the nested test
# host when this CPU has no hardware virtualization).
demo: build guest nested-host
	tests/demo/run

bench: build nested-host
	tests/bench/run

format:
	clang-format -i $$(git ls-files '*.cpp' '*.h')

clean:
	rm -rf $(BUILD)
