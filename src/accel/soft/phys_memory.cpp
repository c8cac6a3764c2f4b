#include "accel/soft/phys_memory.h"

#include <algorithm>

#include <fmt/format.h>

namespace vireo::soft {

Result<void> PhysMemory::map(const MemorySlot& slot) {
    std::lock_guard lock(m_mutex);
    auto next = std::make_shared<SlotTable>(*m_table.load());
    std::erase_if(next->slots, [&](const auto& s) { return s->spec.slot == slot.slot; });
    if (slot.size != 0) {  // a zero-sized slot deletes it, as with KVM
        if (slot.size % kPageSize != 0 || slot.guest.value % kPageSize != 0 ||
            slot.host == nullptr || slot.guest.value + slot.size < slot.guest.value) {
            return Error(fmt::format("soft: bad memory slot {} at {:#x}+{:#x}", slot.slot,
                                     slot.guest.value, slot.size));
        }
        for (const auto& s : next->slots) {
            const auto a = s->spec.guest.value;
            if (slot.guest.value < a + s->spec.size && a < slot.guest.value + slot.size) {
                return Error(
                    fmt::format("soft: memory slot {} overlaps slot {}", slot.slot, s->spec.slot));
            }
        }
        auto r = std::make_shared<RamSlot>();
        r->spec = slot;
        r->log_dirty.store(slot.log_dirty, std::memory_order_relaxed);
        r->host = static_cast<std::uint8_t*>(slot.host);
        r->pages = slot.size / kPageSize;
        r->dirty = std::make_unique<std::atomic<std::uint64_t>[]>((r->pages + 63) / 64);
        r->code = std::make_unique<std::atomic<std::uint8_t>[]>(r->pages);
        r->code_gen = std::make_unique<std::atomic<std::uint32_t>[]>(r->pages);
        next->slots.push_back(std::move(r));
        std::sort(next->slots.begin(), next->slots.end(), [](const auto& x, const auto& y) {
            return x->spec.guest.value < y->spec.guest.value;
        });
    }
    m_table.store(std::move(next));
    m_generation.fetch_add(1, std::memory_order_release);
    return ok();
}

void PhysMemory::host_wrote(GuestAddress where, std::uint64_t len) {
    const std::uint64_t gpa = where.value;
    if (len == 0) {
        return;
    }
    const auto t = m_table.load();
    const std::uint64_t last = gpa + (len - 1) < gpa ? ~0ULL : gpa + (len - 1);
    for (const auto& s : t->slots) {
        const std::uint64_t start = s->spec.guest.value;
        const std::uint64_t end = start + s->spec.size - 1;
        if (last < start || gpa > end) {
            continue;
        }
        const std::uint64_t first_page = (std::max(gpa, start) - start) >> kPageShift;
        const std::uint64_t last_page = (std::min(last, end) - start) >> kPageShift;
        for (std::uint64_t p = first_page; p <= last_page; ++p) {
            s->code_gen[p].fetch_add(1, std::memory_order_release);
        }
    }
}

Result<void> PhysMemory::get_dirty_log(std::uint32_t slot, std::span<std::uint64_t> bitmap) {
    const auto t = m_table.load();
    for (const auto& s : t->slots) {
        if (s->spec.slot != slot) {
            continue;
        }
        if (!s->log_dirty.load(std::memory_order_relaxed)) {
            return Error(fmt::format("dirty log: slot {} is not logged", slot));
        }
        const std::uint64_t words = (s->pages + 63) / 64;
        if (bitmap.size() < words) {
            return Error(
                fmt::format("dirty log: bitmap of {} words too small for slot {} ({} "
                            "pages)",
                            bitmap.size(), slot, s->pages));
        }
        for (std::uint64_t i = 0; i < words; ++i) {
            bitmap[i] = s->dirty[i].exchange(0, std::memory_order_relaxed);
        }
        return ok();
    }
    return Error(fmt::format("dirty log: no memory slot {}", slot));
}

Result<void> PhysMemory::set_dirty_logging(std::uint32_t slot, bool on) {
    const auto t = m_table.load();
    for (const auto& s : t->slots) {
        if (s->spec.slot != slot) {
            continue;
        }
        if (on && !s->log_dirty.load(std::memory_order_relaxed)) {
            // The log starts empty. A store racing with this either sets its bit after the clear
            // or is already in the page (it happened before logging started).
            for (std::uint64_t i = 0; i < (s->pages + 63) / 64; ++i) {
                s->dirty[i].store(0, std::memory_order_relaxed);
            }
        }
        s->log_dirty.store(on, std::memory_order_seq_cst);
        return ok();
    }
    return Error(fmt::format("dirty log: no memory slot {}", slot));
}

}  // namespace vireo::soft
