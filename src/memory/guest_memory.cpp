#include "memory/guest_memory.h"

#include <sys/mman.h>
#include <unistd.h>

#include <fmt/format.h>

namespace vireo {

namespace {

Result<void> validate(std::span<const MemoryRegionSpec> specs) {
    if (specs.empty()) {
        return Error("guest memory: no regions");
    }
    for (std::size_t i = 0; i < specs.size(); ++i) {
        const auto& s = specs[i];
        GuestAddress end;
        if (s.size == 0 || s.start.value % kPageSize != 0 || s.size % kPageSize != 0) {
            return Error(
                fmt::format("guest memory: region {:#x}+{:#x} is empty or not page-aligned",
                            s.start.value, s.size));
        }
        if (!s.start.checked_add(s.size, end)) {
            return Error(fmt::format("guest memory: region {:#x}+{:#x} wraps past 2^64",
                                     s.start.value, s.size));
        }
        if (i > 0 && specs[i - 1].start.value + specs[i - 1].size > s.start.value) {
            return Error(fmt::format("guest memory: region at {:#x} overlaps or is out of order",
                                     s.start.value));
        }
    }
    return ok();
}

}  // namespace

Result<GuestMemory> GuestMemory::create(std::span<const MemoryRegionSpec> specs,
                                        MemoryOptions options) {
    if (auto r = validate(specs); !r) {
        return r.error();
    }
    GuestMemory mem;
    std::uint64_t total = 0;
    for (const auto& s : specs) {
        total += s.size;
    }
    if (options.memfd) {
        mem.m_fd = UniqueFd(::memfd_create("vireo-guest-ram", MFD_CLOEXEC));
        if (!mem.m_fd.valid()) {
            return Error::from_errno("guest memory: memfd_create");
        }
        if (::ftruncate(mem.m_fd.get(), static_cast<off_t>(total)) != 0) {
            return Error::from_errno(fmt::format("guest memory: ftruncate to {} bytes", total));
        }
    }
    std::uint64_t offset = 0;
    for (const auto& s : specs) {
        void* p = options.memfd
                      ? ::mmap(nullptr, s.size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE,
                               mem.m_fd.get(), static_cast<off_t>(offset))
                      : ::mmap(nullptr, s.size, PROT_READ | PROT_WRITE,
                               MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (p == MAP_FAILED) {
            return Error::from_errno(fmt::format("guest memory: mmap of {} bytes", s.size));
        }
        if (options.hugepages) {
            static_cast<void>(::madvise(p, s.size, MADV_HUGEPAGE));  // a hint only
        }
        mem.m_regions.push_back(GuestRegion{s.start, s.size, static_cast<std::uint8_t*>(p),
                                            options.memfd ? offset : 0});
        offset += s.size;
    }
    return mem;
}

GuestMemory::GuestMemory(GuestMemory&& other) noexcept
    : m_regions(std::move(other.m_regions)), m_fd(std::move(other.m_fd)) {
    other.m_regions.clear();
}

GuestMemory& GuestMemory::operator=(GuestMemory&& other) noexcept {
    if (this != &other) {
        unmap_all();
        m_regions = std::move(other.m_regions);
        other.m_regions.clear();
        m_fd = std::move(other.m_fd);
    }
    return *this;
}

GuestMemory::~GuestMemory() {
    unmap_all();
}

void GuestMemory::unmap_all() {
    for (const auto& r : m_regions) {
        static_cast<void>(::munmap(r.host, r.size));
    }
    m_regions.clear();
}

std::uint8_t* GuestMemory::host_range(GuestAddress addr, std::uint64_t len) const {
    for (const auto& r : m_regions) {
        if (!r.contains(addr)) {
            continue;
        }
        const std::uint64_t offset = addr.value - r.start.value;
        // offset < r.size holds, so r.size - offset cannot underflow.
        if (len > r.size - offset) {
            return nullptr;
        }
        return r.host + offset;
    }
    return nullptr;
}

bool GuestMemory::contains_range(GuestAddress addr, std::uint64_t len) const {
    return host_range(addr, len) != nullptr;
}

Result<void> GuestMemory::read(GuestAddress addr, std::span<std::uint8_t> out) const {
    const std::uint8_t* src = host_range(addr, out.size());
    if (src == nullptr) {
        return Error(fmt::format("guest memory: read of {} bytes at {:#x} is outside guest RAM",
                                 out.size(), addr.value));
    }
    std::memcpy(out.data(), src, out.size());
    return ok();
}

Result<void> GuestMemory::write(GuestAddress addr, std::span<const std::uint8_t> in) {
    std::uint8_t* dst = host_range(addr, in.size());
    if (dst == nullptr) {
        return Error(fmt::format("guest memory: write of {} bytes at {:#x} is outside guest RAM",
                                 in.size(), addr.value));
    }
    std::memcpy(dst, in.data(), in.size());
    return ok();
}

std::uint64_t GuestMemory::total_size() const {
    std::uint64_t total = 0;
    for (const auto& r : m_regions) {
        total += r.size;
    }
    return total;
}

}  // namespace vireo
