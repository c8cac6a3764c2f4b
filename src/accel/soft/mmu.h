// Linear-to-physical translation and guest memory access for one soft vCPU: the paging modes of
// SDM Vol. 3 §4 (none, 32-bit, PAE, 4-level with 4 KiB / 2 MiB (/4 MiB) pages), NX, WP, U/S,
// accessed and dirty bits, #PF with its error code and CR2, and a direct-mapped software TLB.
// RAM is reached only through bounds-checked slot lookups; everything else is MMIO.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>

#include "accel/soft/cpu_state.h"
#include "accel/soft/guest_fault.h"
#include "accel/soft/phys_memory.h"

namespace vireo::soft {

// Where accesses that are not RAM go, and port I/O (the vCPU: ioeventfds, exit counters, the
// IoHandler).
class IoSink {
public:
    virtual ~IoSink() = default;
    virtual void pio_read(std::uint16_t port, std::span<std::uint8_t> data) = 0;
    virtual void pio_write(std::uint16_t port, std::span<const std::uint8_t> data) = 0;
    virtual void mmio_read(std::uint64_t pa, std::span<std::uint8_t> data) = 0;
    virtual void mmio_write(std::uint64_t pa, std::span<const std::uint8_t> data) = 0;
};

enum class Access : std::uint8_t { Read, Write, Exec };

class Mmu {
public:
    Mmu(CpuState& cpu, IoSink& sink) : m_cpu(cpu), m_sink(sink) {}

    void set_table(std::shared_ptr<const SlotTable> t) {
        m_table = std::move(t);
        flush();
    }
    void flush() {
        for (auto& e : m_tlb) {
            e.tag = kInvalid;
        }
    }
    void flush_page(std::uint64_t lin) { m_tlb[index(lin)].tag = kInvalid; }

    // Reads/writes `size` (1..8) bytes at a linear address. `user`: a CPL3 data access
    // (not the implicit supervisor accesses to descriptor tables and the TSS).
    std::uint64_t read(std::uint64_t lin, unsigned size, bool user) {
        const TlbEntry& e = m_tlb[index(lin)];
        const unsigned off = lin & (kPageSize - 1);
        if (e.tag == (lin >> kPageShift) && e.host && off + size <= kPageSize &&
            (!user || e.user)) {
            return load(e.host + off, size);
        }
        return read_slow(lin, size, user);
    }
    void write(std::uint64_t lin, unsigned size, std::uint64_t v, bool user) {
        const TlbEntry& e = m_tlb[index(lin)];
        const unsigned off = lin & (kPageSize - 1);
        if (e.tag == (lin >> kPageShift) && e.host_w && off + size <= kPageSize &&
            (!user || e.user)) {
            store(e.host_w + off, v, size);
            m_code_written |= e.slot->on_write(e.slot_page);
            return;
        }
        write_slow(lin, size, v, user);
    }
    // A host pointer for an atomic read-modify-write of `size` bytes at `lin`, when they lie in
    // one RAM page the access may write; the page is marked written. nullptr otherwise (the
    // caller then does a plain read and write).
    std::uint8_t* rmw_pointer(std::uint64_t lin, unsigned size, bool user);

    void read_bytes(std::uint64_t lin, std::span<std::uint8_t> out, bool user);
    void write_bytes(std::uint64_t lin, std::span<const std::uint8_t> in, bool user);

    // Translates for `acc` (raises #PF); fills the TLB.
    std::uint64_t translate(std::uint64_t lin, Access acc, bool user);

    // Physical access: RAM through the slot table, else MMIO.
    std::uint64_t phys_read(std::uint64_t pa, unsigned size);
    void phys_write(std::uint64_t pa, unsigned size, std::uint64_t v);
    RamSlot* ram(std::uint64_t pa) const {
        return m_table ? PhysMemory::find(*m_table, pa) : nullptr;
    }

    // Set when a store hit a page holding decoded code; the interpreter re-checks its cache.
    bool m_code_written = false;

private:
    // Fixed-size copies, so the hot path has no call into memcpy for a variable length.
    static std::uint64_t load(const std::uint8_t* p, unsigned size) {
        switch (size) {
            case 1:
                return *p;
            case 2: {
                std::uint16_t v;
                std::memcpy(&v, p, 2);
                return v;
            }
            case 4: {
                std::uint32_t v;
                std::memcpy(&v, p, 4);
                return v;
            }
            default: {
                std::uint64_t v;
                std::memcpy(&v, p, 8);
                return v;
            }
        }
    }
    static void store(std::uint8_t* p, std::uint64_t v, unsigned size) {
        switch (size) {
            case 1:
                *p = static_cast<std::uint8_t>(v);
                break;
            case 2: {
                const auto x = static_cast<std::uint16_t>(v);
                std::memcpy(p, &x, 2);
                break;
            }
            case 4: {
                const auto x = static_cast<std::uint32_t>(v);
                std::memcpy(p, &x, 4);
                break;
            }
            default:
                std::memcpy(p, &v, 8);
                break;
        }
    }
    static constexpr std::uint64_t kInvalid = ~0ULL;
    static constexpr unsigned kTlbSize = 512;
    struct TlbEntry {
        std::uint64_t tag = kInvalid;    // linear page number
        std::uint8_t* host = nullptr;    // page base when RAM
        std::uint8_t* host_w = nullptr;  // page base when RAM, writable and already dirty
        RamSlot* slot = nullptr;
        std::uint64_t slot_page = 0;
        std::uint64_t pa_page = 0;
        bool user = false;
    };
    static unsigned index(std::uint64_t lin) { return (lin >> kPageShift) % kTlbSize; }

    std::uint64_t read_slow(std::uint64_t lin, unsigned size, bool user);
    void write_slow(std::uint64_t lin, unsigned size, std::uint64_t v, bool user);
    // Page walk per the current paging mode; fills `e` or raises #PF.
    void walk(std::uint64_t lin, Access acc, bool user, TlbEntry& e);
    [[noreturn]] void page_fault(std::uint64_t lin, Access acc, bool user, bool present, bool rsvd);
    void set_bits(std::uint64_t pa, std::uint64_t entry, std::uint64_t bits, unsigned width);

    CpuState& m_cpu;
    IoSink& m_sink;
    std::shared_ptr<const SlotTable> m_table;
    std::array<TlbEntry, kTlbSize> m_tlb{};
};

}  // namespace vireo::soft
