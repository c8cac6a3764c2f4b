#include "arch/x86_64/boot_layout.h"

#include <sys/stat.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <vector>

#include <fmt/format.h>

#include "arch/x86_64/byte_reader.h"
#include "base/file_open.h"
#include "base/size.h"

namespace vireo::loader {

namespace {

std::uint64_t end_of(const LayoutRange& r) {
    return r.start + r.size;  // builders guarantee no wrap
}

bool overlaps(std::uint64_t a_start, std::uint64_t a_end, std::uint64_t b_start,
              std::uint64_t b_end) {
    return a_start < b_end && b_start < a_end;
}

// The highest page-aligned start in [lo, hi) for `size` bytes that avoids every range in `avoid`.
// Each collision lowers hi to the start of the range hit, so the loop ends after at most
// avoid.size() + 1 rounds.
std::optional<std::uint64_t> highest_fit(std::uint64_t lo, std::uint64_t hi, std::uint64_t size,
                                         std::span<const LayoutRange> avoid) {
    for (;;) {
        if (hi < lo || hi - lo < size) {
            return std::nullopt;
        }
        const std::uint64_t start = align_down(hi - size, kPageSize);
        if (start < lo) {
            return std::nullopt;
        }
        const LayoutRange* hit = nullptr;
        for (const auto& r : avoid) {
            if (r.size != 0 && overlaps(start, start + size, r.start, end_of(r))) {
                hit = &r;
                break;
            }
        }
        if (hit == nullptr) {
            return start;
        }
        hi = hit->start;  // < start + size <= hi: strictly lower
    }
}

}  // namespace

Result<void> validate_e820(std::span<const E820Entry> e820) {
    if (e820.empty()) {
        return Error("kernel: no E820 memory map given");
    }
    for (std::size_t i = 0; i < e820.size(); ++i) {
        std::uint64_t end = 0;
        if (!checked_add(e820[i].addr, e820[i].size, end)) {
            return Error(fmt::format("kernel: E820 entry {} ({:#x} + {:#x}) wraps past 2^64", i,
                                     e820[i].addr, e820[i].size));
        }
    }
    return ok();
}

bool is_ram(const GuestMemory& mem, std::span<const E820Entry> e820, std::uint64_t start,
            std::uint64_t size) {
    std::uint64_t end = 0;
    if (!checked_add(start, size, end) || !mem.contains_range(GuestAddress(start), size)) {
        return false;
    }
    return std::any_of(e820.begin(), e820.end(), [&](const E820Entry& e) {
        // validate_e820 ran: e.addr + e.size does not wrap.
        return e.type == E820Type::Ram && start >= e.addr && end <= e.addr + e.size;
    });
}

Result<void> check_disjoint(std::span<const LayoutRange> ranges) {
    for (std::size_t i = 0; i < ranges.size(); ++i) {
        for (std::size_t j = i + 1; j < ranges.size(); ++j) {
            const auto& a = ranges[i];
            const auto& b = ranges[j];
            if (a.size != 0 && b.size != 0 && overlaps(a.start, end_of(a), b.start, end_of(b))) {
                return Error(fmt::format("kernel: {} [{:#x}, {:#x}) overlaps {} [{:#x}, {:#x})",
                                         a.what, a.start, end_of(a), b.what, b.start, end_of(b)));
            }
        }
    }
    return ok();
}

std::optional<std::uint64_t> find_initrd_slot(const GuestMemory& mem,
                                              std::span<const E820Entry> e820, std::uint64_t size,
                                              std::uint64_t min_start, std::uint64_t max_end,
                                              std::span<const LayoutRange> avoid) {
    std::optional<std::uint64_t> best;
    for (const auto& e : e820) {
        if (e.type != E820Type::Ram) {
            continue;
        }
        for (const auto& region : mem.regions()) {
            // Window = E820 entry ∩ guest memory region ∩ [min_start, max_end).
            const std::uint64_t lo = std::max({e.addr, region.start.value, min_start});
            const std::uint64_t hi =
                std::min({e.addr + e.size, region.start.value + region.size, max_end});
            const auto start = highest_fit(lo, hi, size, avoid);
            if (start && (!best || *start > *best)) {
                best = start;
            }
        }
    }
    return best;
}

Result<void> check_cmdline(std::string_view cmdline, std::uint64_t limit,
                           std::string_view limit_source) {
    if (cmdline.find('\0') != std::string_view::npos) {
        return Error("kernel: command line contains a NUL byte");
    }
    if (cmdline.size() > limit) {
        return Error(
            fmt::format("kernel: command line is {} bytes, longer than the limit of {} ({})",
                        cmdline.size(), limit, limit_source));
    }
    return ok();
}

Result<void> write_cmdline(GuestMemory& mem, GuestAddress address, std::string_view cmdline) {
    std::vector<std::uint8_t> bytes(cmdline.begin(), cmdline.end());
    bytes.push_back(0);
    if (auto r = mem.write(address, bytes); !r) {
        return r.error().wrap("kernel: command line");
    }
    return ok();
}

Result<void> write_zeros(GuestMemory& mem, GuestAddress address, std::uint64_t size) {
    if (!mem.contains_range(address, size)) {
        return Error(fmt::format("kernel: zero fill [{:#x}, +{:#x}) is outside guest memory",
                                 address.value, size));
    }
    static constexpr std::array<std::uint8_t, 64 * 1024> kZeros{};
    while (size != 0) {
        const std::uint64_t chunk = std::min<std::uint64_t>(size, kZeros.size());
        if (auto r = mem.write(address, std::span(kZeros.data(), chunk)); !r) {
            return r.error().wrap("kernel: zero fill");
        }
        address = address + chunk;
        size -= chunk;
    }
    return ok();
}

namespace {
constexpr std::uint64_t k4GiB = 1ULL << 32;
}  // namespace

std::uint64_t max_boot_file_size(std::span<const E820Entry> e820) {
    std::uint64_t total = 0;
    for (const E820Entry& e : e820) {
        if (e.type != E820Type::Ram || e.addr >= k4GiB) {
            continue;
        }
        total += std::min(e.size, k4GiB - e.addr);
    }
    return total;
}

Result<void> check_boot_files(const std::string& kernel_path, const std::string& initrd_path,
                              std::span<const E820Entry> e820) {
    const std::uint64_t limit = max_boot_file_size(e820);
    const std::pair<const char*, const std::string*> files[] = {{"kernel", &kernel_path},
                                                                {"initrd", &initrd_path}};
    for (const auto& [what, path] : files) {
        if (path->empty()) {
            continue;
        }
        struct stat st {};
        if (::stat(path->c_str(), &st) != 0) {
            return Error::from_errno(fmt::format("{} {}", what, *path));
        }
        if (!S_ISREG(st.st_mode)) {
            return Error(fmt::format("{} {}: is {}, not a regular file", what, *path,
                                     file_type_name(st.st_mode)),
                         EINVAL);
        }
        const auto size = static_cast<std::uint64_t>(st.st_size);
        if (size > limit) {
            return Error(fmt::format("{} {}: {} is more than the {} of guest RAM below 4 GiB it "
                                     "must fit in",
                                     what, *path, format_size(size), format_size(limit)),
                         EFBIG);
        }
    }
    return ok();
}

}  // namespace vireo::loader
