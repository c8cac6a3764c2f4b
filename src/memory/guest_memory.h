// Guest RAM: host mappings of guest-physical ranges, reached only through bounds-checked
// accessors (DESIGN.md §3). No host pointer derived from a guest address outlives a call, except
// the region bases handed to the accelerator to register memory slots.
#pragma once

#include <fcntl.h>  // F_SEAL_*

#include <atomic>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <type_traits>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"
#include "memory/guest_address.h"
#include "memory/host_write_observer.h"

namespace vireo {

inline constexpr std::uint64_t kPageSize = 4096;

// Words of a dirty bitmap (GuestMemory::take_dirty) covering `pages` pages.
constexpr std::size_t dirty_bitmap_words(std::uint64_t pages) {
    return static_cast<std::size_t>((pages + 63) / 64);
}

struct MemoryRegionSpec {
    GuestAddress start;
    std::uint64_t size = 0;
};

struct MemoryOptions {
    // Back RAM with a memfd (shareable, snapshot-friendly) instead of anonymous memory.
    bool memfd = false;
    // Ask for transparent huge pages on the mapping (madvise; a hint, never an error). Mappings
    // are 2 MiB-aligned either way, so hosts with THP "always" use huge pages regardless.
    bool hugepages = false;
    // Back RAM with explicit 2 MiB hugetlb pages (Firecracker's huge_pages "2M"), reserved when
    // mapped: an error names how many the host lacks instead of a SIGBUS later. Every region
    // must be a multiple of 2 MiB. Anonymous memory only (not with memfd).
    bool hugetlb = false;
};

// The seals a guest RAM memfd carries from its creation: its size is fixed for good.
inline constexpr int kMemfdSeals = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;

// 2 MiB huge pages this host can still hand out (free, not reserved), from
// /sys/kernel/mm/hugepages/hugepages-2048kB; 0 when the host has none configured.
std::uint64_t free_huge_pages_2m();

// One contiguous guest-physical range and its host mapping.
struct GuestRegion {
    GuestAddress start;
    std::uint64_t size = 0;
    std::uint8_t* host = nullptr;
    std::uint64_t fd_offset = 0;  // offset of this region in the memfd, when there is one

    std::uint64_t pages() const { return size / kPageSize; }

    bool contains(GuestAddress a) const { return a >= start && a.value - start.value < size; }
};

class GuestMemory {
public:
    // Regions must be page-aligned, non-empty, sorted and non-overlapping.
    static Result<GuestMemory> create(std::span<const MemoryRegionSpec> specs,
                                      MemoryOptions options = {});
    // Guest RAM from a memory file (snapshot/memory_file.h), which holds the regions back to back
    // in region order: region i at the sum of the sizes of the regions before it. The file must be
    // a regular file of exactly the regions' total size.
    //  - lazy (eager = false): each region is a MAP_PRIVATE mapping of the file at its offset.
    //    Nothing is copied up front (pages are read on first touch) and the guest's writes stay
    //    private (copy-on-write): the file is never modified. The file must not be changed or
    //    truncated by anyone while this memory lives (untouched pages still read from it).
    //  - eager: anonymous memory (or a memfd, options.memfd) filled from the file with pread;
    //    ranges the file reports as holes (SEEK_HOLE) are skipped, they read as zeros anyway.
    // options.hugepages is the same hint as for create(); options.memfd needs eager.
    // `fd` is only used during the call (the mappings keep their own reference to the file).
    static Result<GuestMemory> create_from_file(std::span<const MemoryRegionSpec> specs, int fd,
                                                bool eager, MemoryOptions options = {});

    // Guest RAM in a memfd that another process created with create(options.memfd) and handed
    // over (a local live migration, migration_sender.h): mapped shared, region i back to back
    // after the regions before it, as create() lays them out. The fd must be a regular file of
    // exactly the regions' total size, sealed against shrinking (kMemfdSeals). Nothing is copied.
    static Result<GuestMemory> adopt_memfd(std::span<const MemoryRegionSpec> specs, UniqueFd fd,
                                           MemoryOptions options = {});

    GuestMemory(GuestMemory&& other) noexcept;
    GuestMemory& operator=(GuestMemory&& other) noexcept;
    GuestMemory(const GuestMemory&) = delete;
    GuestMemory& operator=(const GuestMemory&) = delete;
    ~GuestMemory();

    // Copies between guest memory and host buffers. The whole range [addr, addr + len) must lie
    // inside one region and must not wrap; otherwise nothing is copied and an error is returned.
    // write() marks what it wrote dirty (mark_dirty) when dirty tracking is on.
    Result<void> read(GuestAddress addr, std::span<std::uint8_t> out) const;
    Result<void> write(GuestAddress addr, std::span<const std::uint8_t> in);

    template <typename T>
    Result<T> read_obj(GuestAddress addr) const {
        static_assert(std::is_trivially_copyable_v<T>);
        T value{};
        auto r = read(addr, std::span(reinterpret_cast<std::uint8_t*>(&value), sizeof(T)));
        if (!r) {
            return r.error();
        }
        return value;
    }
    template <typename T>
    Result<void> write_obj(GuestAddress addr, const T& value) {
        static_assert(std::is_trivially_copyable_v<T>);
        return write(addr, std::span(reinterpret_cast<const std::uint8_t*>(&value), sizeof(T)));
    }

    // The host bytes of [addr, addr + len), which must lie inside one region. For device I/O that
    // hands guest buffers to the kernel (iovecs for io_uring, readv/writev on a tap): the span is
    // valid while this GuestMemory lives and must not be kept beyond the request it serves. The
    // guest can change these bytes at any time: read each field once, then validate the copy.
    // Writes through a slice are not tracked: whoever writes calls mark_dirty() after the data is
    // in place.
    Result<std::span<std::uint8_t>> slice(GuestAddress addr, std::uint64_t len) const;

    // Who hears of the VMM's writes to guest RAM (memory/host_write_observer.h); nullptr for
    // nobody. Set once, before any device or vCPU thread runs; the observer must outlive every
    // write. write() tells it itself.
    void set_write_observer(HostWriteObserver* observer) { m_observer = observer; }
    bool has_write_observer() const { return m_observer != nullptr; }
    // Whoever writes through a slice() (or through host iovecs made from one) calls note_write()
    // or note_write_at() once the bytes are in place: the pages are marked dirty (when tracking
    // is on) and the write observer hears of them. Not before: a migration that takes the dirty
    // bits between a premature mark and the write would send the page's old bytes and never
    // send it again.
    void note_write(GuestAddress addr, std::uint64_t len) const {
        mark_dirty(addr, len);
        if (m_observer != nullptr && len != 0) {
            m_observer->host_wrote(addr, len);
        }
    }
    // The same for bytes named by their host address (an iovec from slice()); a pointer outside
    // guest RAM is ignored, and the range is cut at the end of its region.
    void note_write_at(const void* host, std::uint64_t len) const;

    // Gives the host back the pages of [addr, addr + len) (a balloon's inflated or reported
    // pages): afterwards they no longer count in the process's RSS, and the guest's next touch
    // finds a zero page (anonymous RAM, a memfd: its hole punched) or the memory file's bytes (a
    // lazily mapped snapshot). The range must lie inside one region and be 4 KiB-aligned. On
    // hugetlb RAM only the whole 2 MiB pages inside the range go (a huge page cannot be split).
    // Returns the bytes released. Thread-safe; not tracked as a write (the guest no longer owns
    // the bytes, so no one may rely on them).
    Result<std::uint64_t> discard(GuestAddress addr, std::uint64_t len);

    // True when [addr, addr + len) lies inside one region.
    bool contains_range(GuestAddress addr, std::uint64_t len) const;
    std::span<const GuestRegion> regions() const { return m_regions; }
    std::uint64_t total_size() const;
    // The memfd backing all regions (invalid when anonymous or mapped from a memory file).
    int fd() const { return m_fd.get(); }

    // Dirty tracking for writes by the VMM and its devices (KVM's dirty log only sees vCPU
    // writes). One bitmap per region, bit per 4 KiB page: bit i of word i / 64 is page i of the
    // region, the layout of KVM_GET_DIRTY_LOG, so the two can be OR-ed. Bits past the region's
    // last page are never set.
    //
    // enable_dirty_tracking() allocates the bitmaps with every page's bit set: everything is dirty
    // until the first snapshot takes it. Later calls do nothing. It must not run concurrently with
    // itself; mark_dirty() and take_dirty() may run on any thread at any time.
    void enable_dirty_tracking();
    bool dirty_tracking() const { return m_tracking.load(std::memory_order_acquire); }
    // Lock-free and thread-safe. Parts of the range outside guest RAM are ignored, and so is the
    // whole call when tracking is off. Call it after the bytes are written: a concurrent
    // take_dirty() that clears the bit first is then followed by a set bit for the new data.
    void mark_dirty(GuestAddress addr, std::uint64_t len) const;
    // The region's bitmap (region.pages() bits rounded up to whole words), each word atomically
    // exchanged with 0. Empty when tracking is off or `region` is not a region index.
    std::vector<std::uint64_t> take_dirty(std::size_t region);

private:
    GuestMemory() = default;
    // Host pointer for [addr, addr + len) or nullptr when the range is not inside one region.
    std::uint8_t* host_range(GuestAddress addr, std::uint64_t len) const;
    void unmap_all();

    struct DirtyBitmap {
        std::unique_ptr<std::atomic<std::uint64_t>[]> words;
        std::size_t count = 0;
    };

    std::vector<GuestRegion> m_regions;
    UniqueFd m_fd;
    bool m_hugetlb = false;  // regions on explicit 2 MiB hugetlb pages
    // Written once by enable_dirty_tracking() before m_tracking is set (release); read only after
    // m_tracking is seen set (acquire).
    std::vector<DirtyBitmap> m_dirty;
    std::atomic<bool> m_tracking{false};
    HostWriteObserver* m_observer = nullptr;
};

}  // namespace vireo
