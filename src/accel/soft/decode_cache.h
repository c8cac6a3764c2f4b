// The decoded-instruction cache, keyed by guest-physical address (one vCPU's; no locking).
// A page's entries carry the page's code generation (RamSlot::code_gen); any guest write to a
// page with decoded code bumps it, so a stale page is dropped the next time it is entered.
// Instructions that cross a page end are not cached (they would depend on two pages).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <unordered_map>
#include <vector>

#include "accel/soft/decoded_insn.h"
#include "accel/soft/phys_memory.h"

namespace vireo::soft {

class CodePage {
public:
    // The cached instruction at page offset `off`, or nullptr. All instructions of a page are
    // decoded in one mode (`mode`); the caller checks it when it enters the page.
    const Insn* find(unsigned off) const {
        const std::uint16_t i = m_index[off];
        return i == 0 ? nullptr : m_insns.get() + (i - 1);
    }
    const Insn* insert(unsigned off, const Insn& in);
    void clear();
    // Makes the page hold instructions of `m` (dropping others: a page executed in two modes,
    // like a mode-switch trampoline, is re-decoded at each switch).
    void set_mode(CpuMode m) {
        if (m != mode) {
            clear();
            mode = m;
        }
    }
    CpuMode mode = CpuMode::Long64;

    std::uint32_t generation = 0;
    RamSlot* slot = nullptr;
    std::uint64_t slot_page = 0;

private:
    std::array<std::uint16_t, kPageSize> m_index{};  // offset -> 1 + position in m_insns
    std::unique_ptr<Insn[]> m_insns;                 // grows by doubling; at most one per offset
    std::size_t m_count = 0, m_capacity = 0;
};

struct DecodeStats {
    std::uint64_t hits = 0;
    std::uint64_t misses = 0;
    std::uint64_t invalidations = 0;
};

class DecodeCache {
public:
    // The page for RAM page `slot_page` of `s` at guest-physical `pa_page`, current with the
    // slot's code generation (cleared when stale). Marks the page as holding code.
    CodePage& page(std::uint64_t pa_page, RamSlot& s, std::uint64_t slot_page);
    void clear() {
        m_pages.clear();
        m_instructions = 0;
    }
    // Decoded instructions held; the interpreter clears the cache past kMaxInstructions, so a
    // guest that executes from many pages cannot make it grow without bound (~112 bytes each).
    std::size_t instructions() const { return m_instructions; }
    void count_insert() { ++m_instructions; }
    static constexpr std::size_t kMaxInstructions = 1 << 20;
    DecodeStats stats;

private:
    // Caps the cache so a guest executing from many pages cannot grow it without bound.
    static constexpr std::size_t kMaxPages = 16384;
    std::unordered_map<std::uint64_t, std::unique_ptr<CodePage>> m_pages;
    std::size_t m_instructions = 0;
};

}  // namespace vireo::soft
