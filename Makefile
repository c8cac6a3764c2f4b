# vireo's entry points. `make demo` and `make check` install what they need (scripts/setup) on a
# fresh Debian 12 machine, as root.
BUILD      := build
ASAN_BUILD := $(BUILD)/asan
CMAKE_ARGS := -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVIREO_ASAN_BUILD_DIR=$(CURDIR)/$(ASAN_BUILD)

.PHONY: all setup build build-asan guest nested-host check demo bench format clean

all: build

setup:
	bash scripts/setup

build: setup
	cmake -S . -B $(BUILD) $(CMAKE_ARGS)
	cmake --build $(BUILD)

build-asan: setup
	cmake -S . -B $(ASAN_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Debug -DVIREO_SANITIZE=ON
	cmake --build $(ASAN_BUILD)

guest: setup
	tests/guest/build

nested-host: build guest
	tests/nested/build-host

# Unit tests, probe tests, both again under ASan+UBSan, then the nested scenarios. CTest's cost
# data is removed so tests run in the order they are declared (tests/CMakeLists.txt).
check: build build-asan guest nested-host
	rm -f $(BUILD)/Testing/Temporary/CTestCostData.txt
	ctest --test-dir $(BUILD) --output-on-failure

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
