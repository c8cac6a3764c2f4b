// Guest-physical memory of a soft VM: the memory slots (host mappings), with per-page state the
// interpreter needs in its store path: the dirty log for live migration (DESIGN.md §2) and the
// "holds decoded code" flag that invalidates the decode cache on self-modifying code.
//
// Slot tables are immutable once published: map_memory builds a new table and swaps it in, and a
// vCPU picks up the new table at its next batch (generation check), so a lookup never races a
// change. Old tables stay alive while any vCPU holds them (shared_ptr).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <vector>

#include "accel/vm.h"
#include "base/result.h"
#include "memory/host_write_observer.h"

namespace vireo::soft {

inline constexpr std::uint64_t kPageSize = 4096;
inline constexpr unsigned kPageShift = 12;

// Per-slot state shared by every vCPU; its pages are counted from the slot's start.
struct RamSlot {
    MemorySlot spec;
    std::uint8_t* host = nullptr;
    std::uint64_t pages = 0;
    // One bit per page written since the last get_dirty_log (only while log_dirty).
    std::unique_ptr<std::atomic<std::uint64_t>[]> dirty;
    // spec.log_dirty at first; set_dirty_logging() changes it while vCPUs run.
    std::atomic<bool> log_dirty{false};
    // Nonzero while some vCPU's decode cache holds instructions from the page.
    std::unique_ptr<std::atomic<std::uint8_t>[]> code;
    // Bumped on every write to a page that held code; decode caches compare it.
    std::unique_ptr<std::atomic<std::uint32_t>[]> code_gen;

    void mark_dirty(std::uint64_t page) {
        auto& w = dirty[page / 64];
        const std::uint64_t bit = 1ULL << (page % 64);
        if ((w.load(std::memory_order_relaxed) & bit) == 0) {
            w.fetch_or(bit, std::memory_order_relaxed);
        }
    }
    // The store-path hook: every guest write to RAM page `page` goes through here. True when
    // the page held decoded code (its decode-cache entries are now stale).
    bool on_write(std::uint64_t page) {
        if (log_dirty.load(std::memory_order_relaxed)) {
            mark_dirty(page);
        }
        if (code[page].load(std::memory_order_relaxed) != 0) {
            code[page].store(0, std::memory_order_relaxed);
            code_gen[page].fetch_add(1, std::memory_order_release);
            return true;
        }
        return false;
    }
};

struct SlotTable {
    std::vector<std::shared_ptr<RamSlot>> slots;  // sorted by guest address, non-overlapping
};

class PhysMemory final : public HostWriteObserver {
public:
    Result<void> map(const MemorySlot& slot);
    std::shared_ptr<const SlotTable> table() const { return m_table.load(); }
    std::uint64_t generation() const { return m_generation.load(std::memory_order_acquire); }
    Result<void> get_dirty_log(std::uint32_t slot, std::span<std::uint64_t> bitmap);
    Result<void> set_dirty_logging(std::uint32_t slot, bool on);
    // The VMM wrote guest RAM from the host side (loader, device DMA): decoded instructions of
    // those pages are stale. Guest stores do this themselves in their store path. Every page's
    // generation is bumped, held code or not: a decode racing with the write then either read
    // the new bytes or finds its generation stale at the next lookup.
    void host_wrote(GuestAddress gpa, std::uint64_t len) override;

    // A RAM lookup in `t`: the slot holding `gpa`, or nullptr (then the address is MMIO).
    static RamSlot* find(const SlotTable& t, std::uint64_t gpa) {
        for (const auto& s : t.slots) {
            if (gpa - s->spec.guest.value < s->spec.size) {
                return s.get();
            }
        }
        return nullptr;
    }

private:
    std::mutex m_mutex;  // serialises map() calls
    std::atomic<std::shared_ptr<const SlotTable>> m_table{std::make_shared<const SlotTable>()};
    std::atomic<std::uint64_t> m_generation{0};
};

}  // namespace vireo::soft
