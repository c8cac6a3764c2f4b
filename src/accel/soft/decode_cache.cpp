#include "accel/soft/decode_cache.h"

#include <algorithm>

namespace vireo::soft {

const Insn* CodePage::insert(unsigned off, const Insn& in) {
    if (m_index[off] != 0) {
        m_insns[m_index[off] - 1] = in;
        return &m_insns[m_index[off] - 1];
    }
    if (m_count == m_capacity) {
        // Growing moves the instructions: a pointer from find() is only used until the next
        // insert (the interpreter looks up again after every decode).
        const std::size_t cap =
            m_capacity == 0 ? 64 : std::min<std::size_t>(m_capacity * 2, kPageSize);
        if (cap == m_capacity) {
            return nullptr;  // cannot happen: at most one instruction per offset
        }
        auto grown = std::make_unique<Insn[]>(cap);
        std::copy(m_insns.get(), m_insns.get() + m_count, grown.get());
        m_insns = std::move(grown);
        m_capacity = cap;
    }
    m_insns[m_count] = in;
    m_index[off] = static_cast<std::uint16_t>(++m_count);
    return &m_insns[m_count - 1];
}

void CodePage::clear() {
    m_index.fill(0);
    m_count = 0;
}

CodePage& DecodeCache::page(std::uint64_t pa_page, RamSlot& s, std::uint64_t slot_page) {
    auto it = m_pages.find(pa_page);
    if (it == m_pages.end()) {
        if (m_pages.size() >= kMaxPages) {
            m_pages.clear();
        }
        it = m_pages.emplace(pa_page, std::make_unique<CodePage>()).first;
        it->second->generation = s.code_gen[slot_page].load(std::memory_order_acquire);
    }
    CodePage& p = *it->second;
    // Flag first, generation second: a write racing with this entry either sees the flag and
    // bumps the generation, or happened before the load below.
    s.code[slot_page].store(1, std::memory_order_seq_cst);
    const std::uint32_t gen = s.code_gen[slot_page].load(std::memory_order_acquire);
    if (p.slot != &s || p.slot_page != slot_page || p.generation != gen) {
        if (p.slot != nullptr) {
            ++stats.invalidations;
        }
        p.clear();
        p.generation = gen;
        p.slot = &s;
        p.slot_page = slot_page;
    }
    return p;
}

}  // namespace vireo::soft
