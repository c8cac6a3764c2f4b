#include "accel/soft/mmu.h"

namespace vireo::soft {

namespace {

// Paging-structure entry bits (SDM Vol. 3 §4.5, Tables 4-14..4-20).
constexpr std::uint64_t kP = 1, kRw = 2, kUs = 4, kA = 0x20, kD = 0x40, kPs = 0x80;
constexpr std::uint64_t kNx = 1ULL << 63;
// MAXPHYADDR of the modelled CPU (CPUID 0x80000008: 40 bits, as qemu64): address bits above it
// in an entry are reserved.
constexpr unsigned kPhysBits = 40;
constexpr std::uint64_t kAddrMask = ((1ULL << kPhysBits) - 1) & ~0xfffULL;
constexpr std::uint64_t kRsvdHigh = ((1ULL << 52) - 1) & ~((1ULL << kPhysBits) - 1);

}  // namespace

[[noreturn]] void Mmu::page_fault(std::uint64_t lin, Access acc, bool user, bool present,
                                  bool rsvd) {
    // #PF error code (SDM Vol. 3 §4.7): P, W/R, U/S, RSVD, I/D.
    std::uint32_t err = (present ? 1u : 0u) | (acc == Access::Write ? 2u : 0u) | (user ? 4u : 0u) |
                        (rsvd ? 8u : 0u);
    if (acc == Access::Exec && (m_cpu.efer & cr::kEferNxe) != 0) {
        err |= 16;
    }
    m_cpu.cr2 = lin;
    raise(kPf, err);
}

void Mmu::set_bits(std::uint64_t pa, std::uint64_t entry, std::uint64_t bits, unsigned width) {
    if ((entry & bits) == bits) {
        return;
    }
    // The processor sets A/D with a locked operation (SDM Vol. 3 §4.8); do the same on RAM.
    if (RamSlot* s = ram(pa); s && (pa - s->spec.guest.value) % width == 0 && !s->spec.read_only) {
        const std::uint64_t off = pa - s->spec.guest.value;
        if (width == 8) {
            __atomic_fetch_or(reinterpret_cast<std::uint64_t*>(s->host + off), bits,
                              __ATOMIC_SEQ_CST);
        } else {
            __atomic_fetch_or(reinterpret_cast<std::uint32_t*>(s->host + off),
                              static_cast<std::uint32_t>(bits), __ATOMIC_SEQ_CST);
        }
        s->on_write(off >> kPageShift);
        return;
    }
    phys_write(pa, width, entry | bits);
}

void Mmu::walk(std::uint64_t lin, Access acc, bool user, TlbEntry& e) {
    std::uint64_t pa = lin;
    bool u = true, w = true, nx = false;
    const bool write = acc == Access::Write;
    if ((m_cpu.cr0 & cr::kCr0Pg) != 0) {
        const bool nxe = (m_cpu.efer & cr::kEferNxe) != 0;
        const std::uint64_t rsvd = kRsvdHigh | (nxe ? 0 : kNx);
        std::uint64_t table;
        int level;  // 4 = PML4 ... 1 = PT
        unsigned width = 8;
        if ((m_cpu.efer & cr::kEferLma) != 0) {
            // Canonical check: bits 63:47 equal (SDM Vol. 1 §3.3.7.1); callers raise #GP first
            // for data accesses, this covers fetches.
            if (static_cast<std::uint64_t>(static_cast<std::int64_t>(lin << 16) >> 16) != lin) {
                raise(kGp, 0);
            }
            table = m_cpu.cr3 & kAddrMask;
            level = 4;
        } else if ((m_cpu.cr4 & cr::kCr4Pae) != 0) {
            // PAE: one of four PDPTEs at CR3[31:5] (SDM Vol. 3 §4.4.1); no U/S or R/W there.
            const std::uint64_t pdpte =
                phys_read((m_cpu.cr3 & 0xffffffe0) + ((lin >> 30) & 3) * 8, 8);
            if ((pdpte & kP) == 0) {
                page_fault(lin, acc, user, false, false);
            }
            if ((pdpte & (0x1e6 | kRsvdHigh | kNx)) != 0) {
                page_fault(lin, acc, user, true, true);
            }
            table = pdpte & kAddrMask;
            level = 2;
        } else {
            table = m_cpu.cr3 & 0xfffff000;
            level = 2;
            width = 4;
        }
        for (;; --level) {
            const unsigned shift = width == 4 ? 12 + 10 * (level - 1) : 12 + 9 * (level - 1);
            const std::uint64_t idx_mask = width == 4 ? 1023 : 511;
            const std::uint64_t entry_pa = table + ((lin >> shift) & idx_mask) * width;
            const std::uint64_t entry = phys_read(entry_pa, width);
            if ((entry & kP) == 0) {
                page_fault(lin, acc, user, false, false);
            }
            const bool large = level > 1 && (entry & kPs) != 0;
            bool bad = width == 8 && (entry & rsvd) != 0;
            if (large && (level > 2 || (width == 4 && (m_cpu.cr4 & cr::kCr4Pse) == 0))) {
                // No 1 GiB pages (not advertised), PS reserved in the PML4; 4 MiB pages only
                // with CR4.PSE.
                if (width == 8 && level > 2) {
                    bad = true;
                }
            }
            if (width == 8 && large && level == 2 && (entry & 0x1fe000) != 0) {
                bad = true;  // 2 MiB PDE bits 20:13 are reserved
            }
            if (bad) {
                page_fault(lin, acc, user, true, true);
            }
            u = u && (entry & kUs) != 0;
            w = w && (entry & kRw) != 0;
            nx = nx || (width == 8 && (entry & kNx) != 0);
            const bool leaf = level == 1 || (large && (width == 8 || (m_cpu.cr4 & cr::kCr4Pse)));
            if (!leaf) {
                set_bits(entry_pa, entry, kA, width);
                table = entry & (width == 8 ? kAddrMask : 0xfffff000);
                continue;
            }
            // Permission checks (SDM Vol. 3 §4.6).
            if ((user && !u) || (write && !w && (user || (m_cpu.cr0 & cr::kCr0Wp) != 0)) ||
                (acc == Access::Exec && nx && nxe)) {
                page_fault(lin, acc, user, true, false);
            }
            set_bits(entry_pa, entry, write ? (kA | kD) : kA, width);
            const std::uint64_t page_mask = (1ULL << shift) - 1;
            const std::uint64_t frame =
                width == 8 ? (entry & kAddrMask & ~page_mask)
                           : (large ? ((entry & 0xffc00000) | ((entry >> 13) & 0xff) << 32)
                                    : (entry & 0xfffff000));
            pa = frame | (lin & page_mask);
            // Only a dirty entry may take later writes without another walk.
            w = w && (write || (entry & kD) != 0);
            break;
        }
    } else {
        pa = lin & 0xffffffffULL;  // no paging: linear = physical, 32 bits outside long mode
    }
    e.tag = lin >> kPageShift;
    e.pa_page = pa & ~(kPageSize - 1);
    e.user = u;
    RamSlot* s = ram(e.pa_page);
    e.slot = s;
    e.host = e.host_w = nullptr;
    if (s) {
        e.slot_page = (e.pa_page - s->spec.guest.value) >> kPageShift;
        e.host = s->host + (e.slot_page << kPageShift);
        // Writable without a walk: RAM not read-only, writable at every level and dirty.
        // (Supervisor writes to read-only pages with CR0.WP=0 always take the walk.)
        if (!s->spec.read_only && w) {
            e.host_w = e.host;
        }
    }
}

std::uint64_t Mmu::translate(std::uint64_t lin, Access acc, bool user) {
    TlbEntry& e = m_tlb[index(lin)];
    if (e.tag != (lin >> kPageShift) || (user && !e.user) || (acc == Access::Write && !e.host_w) ||
        acc == Access::Exec) {
        walk(lin, acc, user, e);
    }
    return e.pa_page | (lin & (kPageSize - 1));
}

std::uint64_t Mmu::phys_read(std::uint64_t pa, unsigned size) {
    std::uint64_t v = 0;
    if (RamSlot* s = ram(pa); s && pa - s->spec.guest.value + size <= s->spec.size) {
        std::memcpy(&v, s->host + (pa - s->spec.guest.value), size);
        return v;
    }
    std::uint8_t buf[8] = {};
    m_sink.mmio_read(pa, std::span(buf, size));
    std::memcpy(&v, buf, size);
    return v;
}

void Mmu::phys_write(std::uint64_t pa, unsigned size, std::uint64_t v) {
    if (RamSlot* s = ram(pa);
        s && !s->spec.read_only && pa - s->spec.guest.value + size <= s->spec.size) {
        const std::uint64_t off = pa - s->spec.guest.value;
        std::memcpy(s->host + off, &v, size);
        m_code_written |= s->on_write(off >> kPageShift);
        if (((off + size - 1) >> kPageShift) != (off >> kPageShift)) {
            m_code_written |= s->on_write((off + size - 1) >> kPageShift);
        }
        return;
    }
    std::uint8_t buf[8];
    std::memcpy(buf, &v, 8);
    m_sink.mmio_write(pa, std::span<const std::uint8_t>(buf, size));
}

std::uint64_t Mmu::read_slow(std::uint64_t lin, unsigned size, bool user) {
    const unsigned off = lin & (kPageSize - 1);
    if (off + size <= kPageSize) {
        return phys_read(translate(lin, Access::Read, user), size);
    }
    // Crosses a page: translate both halves before reading either (a #PF on the second page
    // must leave no side effect of the first).
    const unsigned first = static_cast<unsigned>(kPageSize - off);
    const std::uint64_t pa0 = translate(lin, Access::Read, user);
    const std::uint64_t pa1 = translate(lin + first, Access::Read, user);
    const std::uint64_t lo = phys_read(pa0, first);
    const std::uint64_t hi = phys_read(pa1, size - first);
    return lo | (hi << (8 * first));
}

void Mmu::write_slow(std::uint64_t lin, unsigned size, std::uint64_t v, bool user) {
    const unsigned off = lin & (kPageSize - 1);
    if (off + size <= kPageSize) {
        phys_write(translate(lin, Access::Write, user), size, v);
        return;
    }
    const unsigned first = static_cast<unsigned>(kPageSize - off);
    const std::uint64_t pa0 = translate(lin, Access::Write, user);
    const std::uint64_t pa1 = translate(lin + first, Access::Write, user);
    phys_write(pa0, first, v);
    phys_write(pa1, size - first, v >> (8 * first));
}

std::uint8_t* Mmu::rmw_pointer(std::uint64_t lin, unsigned size, bool user) {
    if ((lin & (kPageSize - 1)) + size > kPageSize) {
        return nullptr;
    }
    translate(lin, Access::Write, user);
    const TlbEntry& e = m_tlb[index(lin)];
    if (!e.host_w) {
        return nullptr;
    }
    m_code_written |= e.slot->on_write(e.slot_page);
    return e.host_w + (lin & (kPageSize - 1));
}

void Mmu::read_bytes(std::uint64_t lin, std::span<std::uint8_t> out, bool user) {
    for (std::size_t i = 0; i < out.size(); ++i) {
        out[i] = static_cast<std::uint8_t>(read(lin + i, 1, user));
    }
}

void Mmu::write_bytes(std::uint64_t lin, std::span<const std::uint8_t> in, bool user) {
    // Probe every page first so a fault leaves memory untouched.
    for (std::size_t i = 0; i < in.size(); i += kPageSize) {
        translate(lin + i, Access::Write, user);
    }
    translate(lin + in.size() - 1, Access::Write, user);
    for (std::size_t i = 0; i < in.size(); ++i) {
        write(lin + i, 1, in[i], user);
    }
}

}  // namespace vireo::soft
