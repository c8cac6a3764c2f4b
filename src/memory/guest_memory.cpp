#include "memory/guest_memory.h"

#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <string>
#include <utility>

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

// Guest RAM is mapped at a 2 MiB-aligned host address so that guest-physical and host-virtual
// addresses agree modulo 2 MiB: only then can a transparent huge page on the host be mapped as one
// large page in KVM's nested page tables (otherwise every 4 KiB page of guest RAM costs its own
// nested page fault on first touch — about 30,000 of them for a minimal boot).
constexpr std::uint64_t kHugePageSize = 2ULL << 20;

// MAP_HUGE_2MB (linux/mman.h): log2 of the page size in the flags' top bits.
constexpr int kMapHuge2M = 21 << MAP_HUGE_SHIFT;

void* map_aligned(std::uint64_t size, int flags, int fd, off_t offset) {
    // Reserve size + 2 MiB of address space, then place the real mapping at the aligned start
    // inside it and give back the rest.
    const std::uint64_t span = size + kHugePageSize;
    void* reserve =
        ::mmap(nullptr, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (reserve == MAP_FAILED) {
        return MAP_FAILED;
    }
    const auto base = reinterpret_cast<std::uintptr_t>(reserve);
    const std::uintptr_t aligned = (base + kHugePageSize - 1) & ~(kHugePageSize - 1);
    void* p = ::mmap(reinterpret_cast<void*>(aligned), size, PROT_READ | PROT_WRITE,
                     flags | MAP_FIXED | MAP_NORESERVE, fd, offset);
    if (p == MAP_FAILED) {
        const int saved = errno;
        static_cast<void>(::munmap(reserve, span));
        errno = saved;
        return MAP_FAILED;
    }
    if (aligned > base) {
        static_cast<void>(::munmap(reserve, aligned - base));
    }
    const std::uintptr_t end = aligned + size;
    if (base + span > end) {
        static_cast<void>(::munmap(reinterpret_cast<void*>(end), base + span - end));
    }
    return p;
}

std::uint64_t total_size_of(std::span<const MemoryRegionSpec> specs) {
    std::uint64_t total = 0;
    for (const auto& s : specs) {
        total += s.size;
    }
    return total;
}

// Reads [offset, offset + len) of the file into dst; fails on a short file.
Result<void> pread_exact(int fd, std::uint8_t* dst, std::uint64_t len, std::uint64_t offset) {
    // One pread moves at most 0x7ffff000 bytes (Linux's MAX_RW_COUNT).
    constexpr std::uint64_t kMaxChunk = 1ULL << 30;
    while (len > 0) {
        const ssize_t n = ::pread(fd, dst, std::min(len, kMaxChunk), static_cast<off_t>(offset));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return Error::from_errno(
                fmt::format("guest memory: reading the memory file at offset {:#x}", offset));
        }
        if (n == 0) {
            return Error(
                fmt::format("guest memory: the memory file ends early, at offset {:#x}", offset));
        }
        const auto done = static_cast<std::uint64_t>(n);
        dst += done;
        len -= done;
        offset += done;
    }
    return ok();
}

// Copies [offset, offset + len) of the file to dst, which holds zeros: only the data ranges are
// read (SEEK_DATA/SEEK_HOLE), holes are left as they are. Moves the file offset of fd.
Result<void> fill_from_file(int fd, std::uint8_t* dst, std::uint64_t len, std::uint64_t offset) {
    const std::uint64_t end = offset + len;
    std::uint64_t pos = offset;
    while (pos < end) {
        std::uint64_t data = pos;
        std::uint64_t hole = end;
        const off_t d = ::lseek(fd, static_cast<off_t>(pos), SEEK_DATA);
        if (d < 0 && errno == ENXIO) {
            break;  // nothing but a hole from pos to the end of the file
        }
        if (d >= 0) {
            data = static_cast<std::uint64_t>(d);
            const off_t h = ::lseek(fd, d, SEEK_HOLE);
            if (h >= 0) {
                hole = std::min(end, static_cast<std::uint64_t>(h));
            }
        }
        // d < 0 for another reason (no SEEK_DATA here): read the rest as data.
        if (data >= end) {
            break;
        }
        if (auto r = pread_exact(fd, dst + (data - offset), hole - data, data); !r) {
            return r;
        }
        pos = hole;
    }
    return ok();
}

// The file behind guest RAM (`what`, for messages) must be a regular file (else: "is not
// `kind`") of exactly the RAM's size: a shorter one would SIGBUS us at the first touch past its
// end, a longer one is someone else's layout.
Result<void> check_backing_file(int fd, std::span<const MemoryRegionSpec> specs, const char* what,
                                const char* kind) {
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        return Error::from_errno(fmt::format("guest memory: {}", what));
    }
    if (!S_ISREG(st.st_mode)) {
        return Error(fmt::format("guest memory: {} is not {}", what, kind));
    }
    const std::uint64_t total = total_size_of(specs);
    if (static_cast<std::uint64_t>(st.st_size) != total) {
        return Error(fmt::format("guest memory: {} is {} bytes, but the guest's RAM is {} bytes",
                                 what, st.st_size, total));
    }
    return ok();
}

}  // namespace

std::uint64_t free_huge_pages_2m() {
    const auto read_count = [](const char* name) -> std::uint64_t {
        const std::string path = std::string("/sys/kernel/mm/hugepages/hugepages-2048kB/") + name;
        std::FILE* f = std::fopen(path.c_str(), "re");
        if (f == nullptr) {
            return 0;
        }
        unsigned long long n = 0;
        if (std::fscanf(f, "%llu", &n) != 1) {
            n = 0;
        }
        std::fclose(f);
        return n;
    };
    const std::uint64_t free = read_count("free_hugepages");
    const std::uint64_t reserved = read_count("resv_hugepages");
    return free > reserved ? free - reserved : 0;
}

Result<GuestMemory> GuestMemory::create(std::span<const MemoryRegionSpec> specs,
                                        MemoryOptions options) {
    if (auto r = validate(specs); !r) {
        return r.error();
    }
    GuestMemory mem;
    const std::uint64_t total = total_size_of(specs);
    if (options.hugetlb) {
        if (options.memfd) {
            return Error("guest memory: hugetlb pages with a memfd are not supported");
        }
        for (const auto& s : specs) {
            if (s.size % kHugePageSize != 0) {
                return Error(fmt::format(
                    "guest memory: huge pages \"2M\" need a multiple of 2 MiB, a region has {} "
                    "bytes",
                    s.size));
            }
        }
        const std::uint64_t need = total / kHugePageSize;
        const std::uint64_t have = free_huge_pages_2m();
        if (have < need) {
            return Error(fmt::format(
                "guest memory: huge pages \"2M\": the guest's {} MiB need {} huge pages of 2 MiB, "
                "the host has {} free (reserve them with sysctl vm.nr_hugepages)",
                total >> 20, need, have));
        }
    }
    if (options.memfd) {
        mem.m_fd = UniqueFd(::memfd_create("vireo-guest-ram", MFD_CLOEXEC | MFD_ALLOW_SEALING));
        if (!mem.m_fd.valid()) {
            return Error::from_errno("guest memory: memfd_create");
        }
        if (::ftruncate(mem.m_fd.get(), static_cast<off_t>(total)) != 0) {
            return Error::from_errno(fmt::format("guest memory: ftruncate to {} bytes", total));
        }
        // Sealed at its size for good: whoever else maps it (a live upgrade's new vireo,
        // adopt_memfd) can trust that no page under its mapping disappears (SIGBUS).
        if (::fcntl(mem.m_fd.get(), F_ADD_SEALS, kMemfdSeals) != 0) {
            return Error::from_errno("guest memory: sealing the memfd");
        }
    }
    mem.m_hugetlb = options.hugetlb;
    std::uint64_t offset = 0;
    for (const auto& s : specs) {
        void* p = nullptr;
        if (options.hugetlb) {
            // Not map_aligned(): hugetlb mappings are 2 MiB-aligned by the kernel, and without
            // MAP_NORESERVE the pages are reserved now (ENOMEM here, never SIGBUS on a fault).
            p = ::mmap(nullptr, s.size, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | kMapHuge2M, -1, 0);
        } else {
            p = options.memfd
                    ? map_aligned(s.size, MAP_SHARED, mem.m_fd.get(), static_cast<off_t>(offset))
                    : map_aligned(s.size, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        }
        if (p == MAP_FAILED) {
            return Error::from_errno(fmt::format("guest memory: mmap of {} bytes", s.size));
        }
        if (options.hugepages && !options.hugetlb) {
            static_cast<void>(::madvise(p, s.size, MADV_HUGEPAGE));  // a hint only
        }
        mem.m_regions.push_back(GuestRegion{s.start, s.size, static_cast<std::uint8_t*>(p),
                                            options.memfd ? offset : 0});
        offset += s.size;
    }
    return mem;
}

Result<GuestMemory> GuestMemory::create_from_file(std::span<const MemoryRegionSpec> specs, int fd,
                                                  bool eager, MemoryOptions options) {
    if (auto r = validate(specs); !r) {
        return r.error();
    }
    if (auto r = check_backing_file(fd, specs, "the memory file", "a regular file"); !r) {
        return r.error();
    }
    if (eager) {
        auto mem = create(specs, options);
        if (!mem) {
            return mem.error();
        }
        std::uint64_t offset = 0;
        for (const auto& r : mem->m_regions) {
            if (auto filled = fill_from_file(fd, r.host, r.size, offset); !filled) {
                return filled.error();
            }
            offset += r.size;
        }
        return mem;
    }
    if (options.memfd || options.hugetlb) {
        return Error(
            "guest memory: a memfd or hugetlb pages cannot map a memory file lazily (restore "
            "eagerly)");
    }
    GuestMemory mem;
    std::uint64_t offset = 0;
    for (const auto& s : specs) {
        // MAP_PRIVATE: pages come from the file's page cache on first touch, and the first write
        // to one gives the guest its own anonymous copy; the file never changes.
        void* p = map_aligned(s.size, MAP_PRIVATE, fd, static_cast<off_t>(offset));
        if (p == MAP_FAILED) {
            return Error::from_errno(
                fmt::format("guest memory: mmap of {} bytes of the memory file at offset {:#x}",
                            s.size, offset));
        }
        if (options.hugepages) {
            static_cast<void>(::madvise(p, s.size, MADV_HUGEPAGE));  // a hint only
        }
        mem.m_regions.push_back(GuestRegion{s.start, s.size, static_cast<std::uint8_t*>(p), 0});
        offset += s.size;
    }
    return mem;
}

Result<GuestMemory> GuestMemory::adopt_memfd(std::span<const MemoryRegionSpec> specs, UniqueFd fd,
                                             MemoryOptions options) {
    if (auto r = validate(specs); !r) {
        return r.error();
    }
    if (auto r = check_backing_file(fd.get(), specs, "the handed-over memory",
                                    "a memfd (not a regular file)");
        !r) {
        return r.error();
    }
    // Without the seals its sender could shrink it under our mapping: the next touch of a page
    // past the new end would kill this process with SIGBUS.
    const int seals = ::fcntl(fd.get(), F_GET_SEALS);
    if (seals < 0 || (seals & (F_SEAL_SHRINK | F_SEAL_SEAL)) != (F_SEAL_SHRINK | F_SEAL_SEAL)) {
        return Error(
            "guest memory: the handed-over memory is not a memfd sealed against shrinking");
    }
    GuestMemory mem;
    mem.m_fd = std::move(fd);
    std::uint64_t offset = 0;
    for (const auto& s : specs) {
        void* p = map_aligned(s.size, MAP_SHARED, mem.m_fd.get(), static_cast<off_t>(offset));
        if (p == MAP_FAILED) {
            return Error::from_errno(
                fmt::format("guest memory: mmap of {} bytes of the handed-over memory", s.size));
        }
        if (options.hugepages) {
            static_cast<void>(::madvise(p, s.size, MADV_HUGEPAGE));  // a hint only
        }
        mem.m_regions.push_back(
            GuestRegion{s.start, s.size, static_cast<std::uint8_t*>(p), offset});
        offset += s.size;
    }
    return mem;
}

GuestMemory::GuestMemory(GuestMemory&& other) noexcept
    : m_regions(std::move(other.m_regions)),
      m_fd(std::move(other.m_fd)),
      m_hugetlb(other.m_hugetlb),
      m_dirty(std::move(other.m_dirty)),
      m_tracking(other.m_tracking.exchange(false)),
      m_observer(std::exchange(other.m_observer, nullptr)) {
    other.m_regions.clear();
    other.m_dirty.clear();
}

GuestMemory& GuestMemory::operator=(GuestMemory&& other) noexcept {
    if (this != &other) {
        unmap_all();
        m_regions = std::move(other.m_regions);
        other.m_regions.clear();
        m_fd = std::move(other.m_fd);
        m_hugetlb = other.m_hugetlb;
        m_dirty = std::move(other.m_dirty);
        other.m_dirty.clear();
        m_tracking.store(other.m_tracking.exchange(false));
        m_observer = std::exchange(other.m_observer, nullptr);
    }
    return *this;
}

Result<std::uint64_t> GuestMemory::discard(GuestAddress addr, std::uint64_t len) {
    if (len == 0) {
        return std::uint64_t{0};
    }
    std::uint8_t* host = host_range(addr, len);
    if (host == nullptr || addr.value % kPageSize != 0 || len % kPageSize != 0) {
        return Error(
            fmt::format("guest memory: cannot discard [{:#x}, +{:#x}): not whole pages "
                        "inside one region",
                        addr.value, len));
    }
    if (m_hugetlb) {
        // Region bases are 2 MiB-aligned on hugetlb (create() checks the sizes, the kernel
        // aligns the mapping), so host alignment follows guest alignment.
        const auto begin =
            (reinterpret_cast<std::uintptr_t>(host) + kHugePageSize - 1) & ~(kHugePageSize - 1);
        const auto end = (reinterpret_cast<std::uintptr_t>(host) + len) & ~(kHugePageSize - 1);
        if (end <= begin) {
            return std::uint64_t{0};
        }
        host = reinterpret_cast<std::uint8_t*>(begin);
        len = end - begin;
    }
    // A shared memfd mapping keeps its pages in the file: MADV_REMOVE punches them out of it
    // (the seals forbid only a size change). Private mappings drop their pages with DONTNEED.
    const int advice = m_fd.valid() ? MADV_REMOVE : MADV_DONTNEED;
    if (::madvise(host, len, advice) != 0) {
        return Error::from_errno(
            fmt::format("guest memory: madvise on [{:#x}, +{:#x})", addr.value, len));
    }
    return len;
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

Result<std::span<std::uint8_t>> GuestMemory::slice(GuestAddress addr, std::uint64_t len) const {
    std::uint8_t* p = host_range(addr, len);
    if (p == nullptr) {
        return Error(
            fmt::format("guest range {:#x}+{:#x} is not inside guest RAM", addr.value, len));
    }
    return std::span<std::uint8_t>(p, len);
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
    note_write(addr, in.size());
    return ok();
}

void GuestMemory::note_write_at(const void* host, std::uint64_t len) const {
    if ((m_observer == nullptr && !dirty_tracking()) || len == 0) {
        return;
    }
    const auto p = reinterpret_cast<std::uintptr_t>(host);
    for (const auto& r : m_regions) {
        const auto base = reinterpret_cast<std::uintptr_t>(r.host);
        if (p - base < r.size) {
            const std::uint64_t offset = p - base;
            note_write(GuestAddress{r.start.value + offset}, std::min(len, r.size - offset));
            return;
        }
    }
}

std::uint64_t GuestMemory::total_size() const {
    std::uint64_t total = 0;
    for (const auto& r : m_regions) {
        total += r.size;
    }
    return total;
}

void GuestMemory::enable_dirty_tracking() {
    if (dirty_tracking()) {
        return;
    }
    m_dirty.clear();
    for (const auto& r : m_regions) {
        DirtyBitmap b;
        b.count = dirty_bitmap_words(r.pages());
        b.words = std::make_unique<std::atomic<std::uint64_t>[]>(b.count);
        for (std::size_t w = 0; w < b.count; ++w) {
            b.words[w].store(~0ULL, std::memory_order_relaxed);
        }
        if (const std::uint64_t tail = r.pages() % 64; tail != 0) {
            b.words[b.count - 1].store((1ULL << tail) - 1, std::memory_order_relaxed);
        }
        m_dirty.push_back(std::move(b));
    }
    m_tracking.store(true, std::memory_order_release);
}

void GuestMemory::mark_dirty(GuestAddress addr, std::uint64_t len) const {
    if (len == 0 || !dirty_tracking()) {
        return;
    }
    // Inclusive bounds, so a range reaching 2^64 needs no wider type; past 2^64 is out of range.
    const std::uint64_t first = addr.value;
    const std::uint64_t last = len - 1 > UINT64_MAX - first ? UINT64_MAX : first + (len - 1);
    for (std::size_t i = 0; i < m_regions.size(); ++i) {
        const auto& r = m_regions[i];
        const std::uint64_t r_last = r.start.value + (r.size - 1);
        if (last < r.start.value || first > r_last) {
            continue;
        }
        const std::uint64_t first_page =
            (std::max(first, r.start.value) - r.start.value) / kPageSize;
        const std::uint64_t last_page = (std::min(last, r_last) - r.start.value) / kPageSize;
        const auto& words = m_dirty[i].words;
        for (std::uint64_t w = first_page / 64; w <= last_page / 64; ++w) {
            std::uint64_t mask = ~0ULL;
            if (w == first_page / 64) {
                mask &= ~0ULL << (first_page % 64);
            }
            if (w == last_page / 64) {
                mask &= ~0ULL >> (63 - last_page % 64);
            }
            // Release pairs with take_dirty()'s acquire: whoever takes this bit also sees the
            // bytes written before it was set. (On x86-64 a locked OR either way.)
            words[w].fetch_or(mask, std::memory_order_release);
        }
    }
}

std::vector<std::uint64_t> GuestMemory::take_dirty(std::size_t region) {
    if (!dirty_tracking() || region >= m_dirty.size()) {
        return {};
    }
    const auto& b = m_dirty[region];
    std::vector<std::uint64_t> out(b.count);
    for (std::size_t w = 0; w < b.count; ++w) {
        out[w] = b.words[w].exchange(0, std::memory_order_acquire);
    }
    return out;
}

}  // namespace vireo
