// The payload of a Memory frame (migration_frame.h): a run of consecutive guest pages, each sent
// as its bytes or, when it is all zeros, as a one-byte marker.
//
//   offset 0   u64 guest-physical address of the first page (4 KiB-aligned)
//          8   u32 n, the number of pages (1 to kMaxPagesPerFrame)
//         12   n x u8 kind   0 = the page's 4096 bytes follow, 1 = the page is all zeros
//     12 + n   the pages of kind 0, in order
//
// The receiver checks the whole payload before it writes a byte: the alignment, the count, every
// kind, the exact length the kinds imply, and that the run lies inside one RAM region of its
// memory (GuestMemory's bounds check). A guest's RAM is never written outside RAM.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "base/result.h"
#include "memory/guest_memory.h"

namespace vireo::migration {

inline constexpr std::uint32_t kMaxPagesPerFrame = 256;  // 1 MiB of data at most
inline constexpr std::size_t kPagesHeaderSize = 12;
inline constexpr std::size_t kMaxPagesPayload =
    kPagesHeaderSize + kMaxPagesPerFrame + kMaxPagesPerFrame * kPageSize;
inline constexpr std::uint8_t kPageData = 0;
inline constexpr std::uint8_t kPageZero = 1;

struct PageRunStats {
    std::uint64_t pages = 0;
    std::uint64_t zero_pages = 0;
};

// True when the 4 KiB page at `p` holds only zeros.
bool page_is_zero(const std::uint8_t* p);

// Appends the payload for `count` pages of `mem` from `gpa` (which must lie inside one region) to
// `out`, and answers true; or leaves `out` as it was and answers false when every page is zero
// and `skip_all_zero` (the first pass: the destination's RAM starts zeroed, so such a run needs
// no frame at all). Each page is copied once, from guest RAM into `out`.
Result<bool> append_page_run(const GuestMemory& mem, GuestAddress gpa, std::uint32_t count,
                             bool skip_all_zero, PageRunStats& stats,
                             std::vector<std::uint8_t>& out);
// The same as a payload of its own (empty when skipped).
Result<std::vector<std::uint8_t>> encode_page_run(const GuestMemory& mem, GuestAddress gpa,
                                                  std::uint32_t count, bool skip_all_zero,
                                                  PageRunStats& stats);

// Which pages of a destination's RAM a migration has written. Its RAM starts zeroed (the premise
// the sender's first pass relies on too), so a zero page that was never written needs no work,
// not even a read: reading untouched anonymous memory maps the shared huge zero page, and a
// write there later splits it into 4 KiB pages, so the resumed guest would run on small nested
// page mappings (more faults, more TLB misses) where a huge page would have served.
class WrittenPages {
public:
    WrittenPages() = default;
    explicit WrittenPages(const GuestMemory& mem);

    // Marks the page at `gpa` (inside RAM) written; answers whether it was before.
    bool mark(std::uint64_t gpa);

private:
    struct Range {
        std::uint64_t start = 0;
        std::uint64_t pages = 0;
        std::vector<std::uint64_t> bits;
    };
    std::vector<Range> m_ranges;
};

// Checks `payload` whole, then writes its pages into `mem`. A zero page is written only where
// the page may hold something else: one `written` has marked (when given), or, without it, one
// that does not already read as zeros.
Result<PageRunStats> apply_page_run(GuestMemory& mem, std::span<const std::uint8_t> payload,
                                    WrittenPages* written = nullptr);

}  // namespace vireo::migration
