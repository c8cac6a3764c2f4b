#include "accel/soft/interpreter_inline.h"

#include <fmt/format.h>

namespace vireo::soft {

Interpreter::Interpreter(PhysMemory& mem, IoSink& io, std::vector<CpuidEntry>& cpuid)
    : m_mmu(m_cpu, io), m_io(io), m_mem(mem), m_cpuid(cpuid) {
    // Power-on state (SDM Vol. 3 §9.1.1, Table 9-1), CS:IP = F000:FFF0.
    for (auto& s : m_cpu.seg) {
        s.limit = 0xffff;
        s.present = 1;
        s.s = 1;
        s.type = 3;
    }
    m_cpu.seg[kCs].selector = 0xf000;
    m_cpu.seg[kCs].base = 0xffff0000;
    m_cpu.seg[kCs].type = 0xb;
    m_cpu.rip = 0xfff0;
    m_cpu.tr.type = 0xb;
    m_cpu.tr.present = 1;
    m_cpu.tr.limit = 0xffff;
    m_cpu.ldt.type = 2;
    m_cpu.ldt.present = 1;
    m_cpu.ldt.limit = 0xffff;
    m_cpu.gdt.limit = m_cpu.idt.limit = 0xffff;
    update_mode();
}

void Interpreter::update_mode() {
    const auto& cs = m_cpu.seg[kCs];
    if ((m_cpu.cr0 & cr::kCr0Pe) == 0) {
        m_mode = CpuMode::Real16;
    } else if ((m_cpu.efer & cr::kEferLma) != 0) {
        m_mode = cs.l ? CpuMode::Long64 : (cs.db ? CpuMode::Compat32 : CpuMode::Compat16);
    } else {
        m_mode = cs.db ? CpuMode::Prot32 : CpuMode::Prot16;
    }
    invalidate_fetch();
}

void Interpreter::state_changed() {
    update_mode();
    flush_tlb();
    m_fault_depth = 0;
}

void Interpreter::sync_table() {
    const std::uint64_t gen = m_mem.generation();
    if (gen != m_table_gen) {
        m_table_gen = gen;
        m_mmu.set_table(m_mem.table());
        m_cache.clear();
        invalidate_fetch();
    }
}

RunStop Interpreter::run(const std::atomic<bool>& exit) {
    m_exit = &exit;
    for (;;) {
        if (exit.load(std::memory_order_relaxed)) {
            return {StopReason::Interrupted, {}};
        }
        RunStop s = run_batch(kBatch, &exit);
        if (s.reason != StopReason::None) {
            return s;
        }
    }
}

RunStop Interpreter::step(std::uint64_t n) {
    static const std::atomic<bool> never{false};
    m_exit = &never;
    return run_batch(n, &never);
}

RunStop Interpreter::run_slice(const std::atomic<bool>& exit) {
    m_exit = &exit;
    return run_batch(kBatch, &exit);
}

RunStop Interpreter::inject(std::uint8_t vector) {
    sync_table();
    try {
        m_fault_depth = 0;
        deliver(vector, false, 0, false, m_cpu.rip);
    } catch (const TripleFault&) {
        return {StopReason::Shutdown, fmt::format("triple fault delivering vector {}", vector)};
    }
    m_cpu.halted = false;
    return {StopReason::None, {}};
}

void Interpreter::start_at_sipi(std::uint8_t vector) {
    CpuState& s = m_cpu;
    for (auto& seg : s.seg) {
        seg = SegmentCache{};
        seg.limit = 0xffff;
        seg.present = 1;
        seg.s = 1;
        seg.type = 3;
    }
    s.seg[kCs].type = 0xb;
    s.seg[kCs].selector = static_cast<std::uint16_t>(vector << 8);
    s.seg[kCs].base = static_cast<std::uint64_t>(vector) << 12;
    s.rip = 0;
    s.rflags = fl::kFixed1;
    s.cr0 = 0x60000010;
    s.cr4 = 0;
    s.efer = 0;
    s.cpl = 0;
    s.halted = false;
    s.int_shadow = false;
    state_changed();
}

RunStop Interpreter::run_batch(std::uint64_t n, const std::atomic<bool>* exit) {
    sync_table();
    // Guest RAM may have changed from the host side since the last batch (decode-cache pages
    // are re-validated against their generation when entered).
    invalidate_fetch();
    m_stop = StopReason::None;
    std::uint64_t done = 0;
    while (done < n) {
        try {
            for (; done < n; ++done) {
                const Insn* in = fetch();
                // RFLAGS.TF as the instruction starts: a single-step trap follows it
                // (SDM Vol. 3 §18.3.1.4), so POPF setting TF traps after the next one.
                const bool single_step = (m_cpu.rflags & fl::TF) != 0;
                execute(*in);
                if (single_step) [[unlikely]] {
                    single_step_trap();
                }
                if (m_stop != StopReason::None || m_mmu.m_code_written) [[unlikely]] {
                    if (m_mmu.m_code_written) {
                        m_mmu.m_code_written = false;
                        invalidate_fetch();
                    }
                    if (m_stop != StopReason::None) {
                        ++done;
                        break;
                    }
                }
            }
        } catch (const GuestFault& f) {
            ++done;
            m_last_fault = f.vector;
            try {
                m_fault_depth = 0;
                deliver(f.vector, f.has_error, f.error, false, m_cpu.rip);
            } catch (const TripleFault&) {
                m_stop = StopReason::Shutdown;
                m_stop_detail =
                    fmt::format("triple fault (vector {} at rip {:#x})", f.vector, m_cpu.rip);
            }
        } catch (const TripleFault&) {
            m_stop = StopReason::Shutdown;
            m_stop_detail = fmt::format("triple fault at rip {:#x}", m_cpu.rip);
        }
        if (m_mmu.m_code_written) {
            m_mmu.m_code_written = false;
            invalidate_fetch();
        }
        if (m_stop != StopReason::None) {
            break;
        }
        if (exit->load(std::memory_order_relaxed)) {
            break;
        }
    }
    m_icount += done;
    const StopReason r = m_stop;
    m_stop = StopReason::None;
    return {r, std::move(m_stop_detail)};
}

void Interpreter::single_step_trap() {
    m_cpu.dr[6] |= 1u << 14;  // DR6.BS
    m_fault_depth = 0;
    deliver(kDb, false, 0, false, m_cpu.rip);
}

void Interpreter::refill_fetch(std::uint64_t lin) {
    const std::uint64_t pa = m_mmu.translate(lin, Access::Exec, user());
    m_fetch_lpn = lin >> kPageShift;
    m_fetch_page = nullptr;
    const std::uint64_t pa_page = pa & ~(kPageSize - 1);
    if (m_cache.instructions() > DecodeCache::kMaxInstructions) {
        m_cache.clear();  // no instruction pointer is held across a refill
    }
    if (RamSlot* s = m_mmu.ram(pa_page)) {
        const std::uint64_t slot_page = (pa_page - s->spec.guest.value) >> kPageShift;
        m_fetch_page = &m_cache.page(pa_page, *s, slot_page);
        m_fetch_page->set_mode(m_mode);
    }
}

inline const Insn* Interpreter::fetch() {
    std::uint64_t lin = m_cpu.seg[kCs].base + m_cpu.rip;
    if (!long64()) {
        lin &= 0xffffffffULL;
    }
    if ((lin >> kPageShift) != m_fetch_lpn) [[unlikely]] {
        refill_fetch(lin);
    }
    if (m_fetch_page) [[likely]] {
        if (const Insn* in = m_fetch_page->find(lin & (kPageSize - 1))) [[likely]] {
            return in;
        }
    }
    return decode_slow(lin);
}

const Insn* Interpreter::decode_slow(std::uint64_t lin) {
    ++m_cache.stats.misses;
    std::uint8_t bytes[16] = {};
    const unsigned off = lin & (kPageSize - 1);
    std::size_t avail = std::min<std::size_t>(15, kPageSize - off);
    const std::uint64_t pa = m_mmu.translate(lin, Access::Exec, user());
    for (std::size_t i = 0; i < avail; ++i) {
        bytes[i] = static_cast<std::uint8_t>(m_mmu.phys_read(pa + i, 1));
    }
    DecodeStatus st = m_decoder.decode(m_mode, bytes, avail, m_scratch);
    if (st == DecodeStatus::NeedMoreBytes) {
        // The instruction continues on the next page: fetch it (a #PF there is reported for
        // that page, SDM Vol. 3 §6.15 #PF) and decode uncached.
        const std::uint64_t pa2 = m_mmu.translate(lin + avail, Access::Exec, user());
        for (std::size_t i = avail; i < 15; ++i) {
            bytes[i] = static_cast<std::uint8_t>(m_mmu.phys_read(pa2 + (i - avail), 1));
        }
        st = m_decoder.decode(m_mode, bytes, 15, m_scratch);
        invalidate_fetch();
        if (st != DecodeStatus::Ok) {
            raise(kUd);
        }
        return &m_scratch;
    }
    if (st != DecodeStatus::Ok) {
        raise(kUd);
    }
    if (m_fetch_page && m_fetch_lpn == (lin >> kPageShift)) {
        if (const Insn* cached = m_fetch_page->insert(off, m_scratch)) {
            m_cache.count_insert();
            return cached;
        }
    }
    return &m_scratch;
}

// --- operands ---

void Interpreter::push(std::uint64_t v, unsigned size) {
    const std::uint64_t mask = sp_mask();
    const std::uint64_t sp = (m_cpu.gpr[kRsp] - size) & mask;
    mem_write(kSs, sp, size, v);
    m_cpu.gpr[kRsp] = (m_cpu.gpr[kRsp] & ~mask) | sp;
}

std::uint64_t Interpreter::stack_read(std::uint64_t offset_from_sp, unsigned size) {
    const std::uint64_t mask = sp_mask();
    return mem_read(kSs, (m_cpu.gpr[kRsp] + offset_from_sp) & mask, size);
}

std::uint64_t Interpreter::pop(unsigned size) {
    const std::uint64_t mask = sp_mask();
    const std::uint64_t v = mem_read(kSs, m_cpu.gpr[kRsp] & mask, size);
    m_cpu.gpr[kRsp] = (m_cpu.gpr[kRsp] & ~mask) | ((m_cpu.gpr[kRsp] + size) & mask);
    return v;
}

void Interpreter::execute(const Insn& in) {
    // Groups in the order they are tried the first time; afterwards the instruction goes to the
    // group that took it (Insn::group). A group that declines has no side effects.
    using Handler = bool (Interpreter::*)(const Insn&);
    static constexpr Handler kGroups[] = {
        &Interpreter::exec_alu,    &Interpreter::exec_move,   &Interpreter::exec_control,
        &Interpreter::exec_bits,   &Interpreter::exec_muldiv, &Interpreter::exec_string,
        &Interpreter::exec_system, &Interpreter::exec_msr,    &Interpreter::exec_fpu,
        &Interpreter::exec_sse,    &Interpreter::exec_legacy,
    };
    switch (in.group) {
        case 1:
            exec_alu(in);
            return;
        case 2:
            exec_move(in);
            return;
        case 3:
            exec_control(in);
            return;
        default:
            break;
    }
    // The handler is read into a local before the call: GCC 12's -fsanitize=bounds evaluates the
    // index of `(this->*kGroups[i])(in)` from a stale register and reports a bogus index.
    if (in.group != 0) {
        const Handler cached = kGroups[in.group - 1];
        if ((this->*cached)(in)) {
            return;
        }
    }
    for (std::uint8_t i = 0; i < std::size(kGroups); ++i) {
        const Handler handler = kGroups[i];
        if ((this->*handler)(in)) {
            in.group = static_cast<std::uint8_t>(i + 1);
            return;
        }
    }
    raise(kUd);  // not implemented, or not advertised in CPUID
}

}  // namespace vireo::soft
