#include "migration/migration_pages.h"

#include <cstring>

#include <fmt/format.h>

namespace vireo::migration {

bool page_is_zero(const std::uint8_t* p) {
    std::uint64_t acc = 0;
    for (std::size_t i = 0; i < kPageSize; i += 64) {
        std::uint64_t w[8];
        std::memcpy(w, p + i, sizeof w);
        acc |= w[0] | w[1] | w[2] | w[3] | w[4] | w[5] | w[6] | w[7];
        if (acc != 0) {
            return false;
        }
    }
    return true;
}

Result<bool> append_page_run(const GuestMemory& mem, GuestAddress gpa, std::uint32_t count,
                             bool skip_all_zero, PageRunStats& stats,
                             std::vector<std::uint8_t>& out) {
    if (count == 0 || count > kMaxPagesPerFrame || gpa.value % kPageSize != 0) {
        return Error(fmt::format("a page run of {} pages at {:#x}", count, gpa.value));
    }
    auto host = mem.slice(gpa, std::uint64_t{count} * kPageSize);
    if (!host) {
        return host.error();
    }
    const std::size_t begin = out.size();
    // At most this much: grown once here, never page by page.
    out.reserve(begin + kPagesHeaderSize + count + std::size_t{count} * kPageSize);
    out.resize(begin + kPagesHeaderSize + count);
    std::memcpy(out.data() + begin, &gpa.value, 8);
    std::memcpy(out.data() + begin + 8, &count, 4);
    std::uint32_t zeros = 0;
    for (std::uint32_t i = 0; i < count; ++i) {
        const std::uint8_t* page = host->data() + std::size_t{i} * kPageSize;
        // The guest may be writing the page meanwhile: whatever bytes are copied here, the
        // write that changes them also dirties the page, and a later pass sends it again.
        if (page_is_zero(page)) {
            out[begin + kPagesHeaderSize + i] = kPageZero;
            ++zeros;
        } else {
            out[begin + kPagesHeaderSize + i] = kPageData;
            out.insert(out.end(), page, page + kPageSize);
        }
    }
    if (zeros == count && skip_all_zero) {
        out.resize(begin);
        return false;
    }
    stats.pages += count;
    stats.zero_pages += zeros;
    return true;
}

Result<std::vector<std::uint8_t>> encode_page_run(const GuestMemory& mem, GuestAddress gpa,
                                                  std::uint32_t count, bool skip_all_zero,
                                                  PageRunStats& stats) {
    std::vector<std::uint8_t> out;
    auto r = append_page_run(mem, gpa, count, skip_all_zero, stats, out);
    if (!r) {
        return r.error();
    }
    return out;
}

WrittenPages::WrittenPages(const GuestMemory& mem) {
    for (const auto& r : mem.regions()) {
        m_ranges.push_back(
            {r.start.value, r.pages(), std::vector<std::uint64_t>((r.pages() + 63) / 64)});
    }
}

bool WrittenPages::mark(std::uint64_t gpa) {
    for (auto& r : m_ranges) {
        if (gpa >= r.start && (gpa - r.start) / kPageSize < r.pages) {
            const std::uint64_t page = (gpa - r.start) / kPageSize;
            const std::uint64_t bit = std::uint64_t{1} << (page % 64);
            const bool was = (r.bits[page / 64] & bit) != 0;
            r.bits[page / 64] |= bit;
            return was;
        }
    }
    return true;  // not RAM (apply_page_run never asks): "may hold data" is the safe answer
}

Result<PageRunStats> apply_page_run(GuestMemory& mem, std::span<const std::uint8_t> payload,
                                    WrittenPages* written) {
    if (payload.size() < kPagesHeaderSize) {
        return Error(
            fmt::format("Memory frame of {} bytes has no page run header", payload.size()));
    }
    std::uint64_t gpa = 0;
    std::uint32_t count = 0;
    std::memcpy(&gpa, payload.data(), 8);
    std::memcpy(&count, payload.data() + 8, 4);
    if (gpa % kPageSize != 0) {
        return Error(fmt::format("Memory frame: page address {:#x} is not 4 KiB-aligned", gpa));
    }
    if (count == 0 || count > kMaxPagesPerFrame) {
        return Error(fmt::format("Memory frame: {} pages (1 to {})", count, kMaxPagesPerFrame));
    }
    if (payload.size() < kPagesHeaderSize + count) {
        return Error(fmt::format("Memory frame: {} page kinds do not fit its {} bytes", count,
                                 payload.size()));
    }
    const std::uint8_t* kinds = payload.data() + kPagesHeaderSize;
    std::size_t data_pages = 0;
    for (std::uint32_t i = 0; i < count; ++i) {
        if (kinds[i] != kPageData && kinds[i] != kPageZero) {
            return Error(fmt::format("Memory frame: page {} has unknown kind {}", i, kinds[i]));
        }
        data_pages += kinds[i] == kPageData ? 1 : 0;
    }
    const std::size_t expected = kPagesHeaderSize + count + data_pages * kPageSize;
    if (payload.size() != expected) {
        return Error(fmt::format("Memory frame of {} bytes; its {} pages need {}", payload.size(),
                                 count, expected));
    }
    // The run must lie inside RAM; GPA + length cannot wrap (count <= 256, gpa checked by slice).
    auto host = mem.slice(GuestAddress{gpa}, std::uint64_t{count} * kPageSize);
    if (!host) {
        return Error(fmt::format("Memory frame: {} pages at {:#x} are not guest RAM", count, gpa));
    }
    PageRunStats stats;
    const std::uint8_t* data = kinds + count;
    for (std::uint32_t i = 0; i < count; ++i) {
        std::uint8_t* dst = host->data() + std::size_t{i} * kPageSize;
        const bool was_written =
            written == nullptr || written->mark(gpa + std::uint64_t{i} * kPageSize);
        if (kinds[i] == kPageData) {
            std::memcpy(dst, data, kPageSize);
            data += kPageSize;
        } else {
            ++stats.zero_pages;
            if (was_written && !page_is_zero(dst)) {
                std::memset(dst, 0, kPageSize);
            }
        }
    }
    stats.pages = count;
    mem.note_write(GuestAddress{gpa}, std::uint64_t{count} * kPageSize);
    return stats;
}

}  // namespace vireo::migration
