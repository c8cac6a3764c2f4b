#include "accel/soft/decode_cache.h"

namespace vireo::soft {

const Insn* CodePage::insert(unsigned off, const Insn& in) {
    if (m_index[off] != 0) {
        // Same offset decoded in another mode: replace in place.
        m_insns[m_index[off] - 1] = in;
        return &m_insns[m_index[off] - 1];
    }
    if (m_insns.size() >= kPageSize) {
        return nullptr;  // cannot happen with distinct offsets; keeps the index in range
    }
    if (m_insns.size() == m_insns.capacity()) {
        // Growing moves the elements: pointers handed out before must not be used across an
        // insert (the interpreter re-looks up after every decode).
        m_insns.reserve(m_insns.empty() ? 64 : m_insns.size() * 2);
    }
    m_insns.push_back(in);
    m_index[off] = static_cast<std::uint16_t>(m_insns.size());
    return &m_insns.back();
}

void CodePage::clear() {
    m_index.fill(0);
    m_insns.clear();
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
