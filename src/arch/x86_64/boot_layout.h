// Layout checks and placement shared by the bzImage and PVH loaders: the caller's E820 map, the
// ranges the loader writes (which must be RAM and must not overlap), the initrd placement and the
// command line.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "arch/x86_64/e820.h"
#include "base/result.h"
#include "memory/guest_memory.h"

namespace vireo::loader {

// [start, start + size) in guest-physical space, named for error messages. Builders check that
// start + size does not wrap.
struct LayoutRange {
    std::string_view what;
    std::uint64_t start = 0;
    std::uint64_t size = 0;
};

// The map must be non-empty and no entry may wrap past 2^64.
Result<void> validate_e820(std::span<const E820Entry> e820);

// True when [start, start + size) is inside one guest memory region and one E820 RAM entry.
bool is_ram(const GuestMemory& mem, std::span<const E820Entry> e820, std::uint64_t start,
            std::uint64_t size);

// "kernel: <a> [x, y) overlaps <b> [x, y)" for the first overlapping pair.
Result<void> check_disjoint(std::span<const LayoutRange> ranges);

// The initrd goes page-aligned as high as possible such that it lies in one E820 RAM entry (and one
// guest memory region), starts at or above min_start, ends at or below max_end, and overlaps none
// of `avoid`. nullopt when there is no such place.
std::optional<std::uint64_t> find_initrd_slot(const GuestMemory& mem,
                                              std::span<const E820Entry> e820, std::uint64_t size,
                                              std::uint64_t min_start, std::uint64_t max_end,
                                              std::span<const LayoutRange> avoid);

// The most bytes a kernel or an initrd file may have for a guest with this E820 map: both loaders
// place the kernel and the initrd in RAM below 4 GiB (boot.rst: the 32-bit protocol's addresses
// and initrd_addr_max; PVH: the 32-bit entry), so a file larger than that RAM can never load.
// Checked before the file is read, so a huge (or sparse) file costs no allocation.
std::uint64_t max_boot_file_size(std::span<const E820Entry> e820);

// The kernel (and the initrd, when `initrd_path` is not empty) must be regular files of at most
// max_boot_file_size(e820) bytes: "kernel /x: 200 GiB is more than the 3 GiB of guest RAM below
// 4 GiB it must fit in". Only stat(): a FIFO or device is refused without being opened.
Result<void> check_boot_files(const std::string& kernel_path, const std::string& initrd_path,
                              std::span<const E820Entry> e820);

// The command line must not hold a NUL and must be at most `limit` bytes (without its NUL).
// `limit_source` explains the limit in the error.
Result<void> check_cmdline(std::string_view cmdline, std::uint64_t limit,
                           std::string_view limit_source);

// Writes cmdline plus its terminating NUL at `address`.
Result<void> write_cmdline(GuestMemory& mem, GuestAddress address, std::string_view cmdline);

// Writes `size` zero bytes at `address` (the range must be inside one region).
Result<void> write_zeros(GuestMemory& mem, GuestAddress address, std::uint64_t size);

}  // namespace vireo::loader
