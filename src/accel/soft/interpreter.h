// The soft CPU's interpreter: fetches through the decode cache, executes the integer ISA, the
// system instructions and an SSE2 integer/move subset, and delivers exceptions through the IDT
// (IVT in real mode). One per vCPU, run on the vCPU's thread. Guest faults are C++ exceptions
// (GuestFault) inside a batch; they are caught by run() and never escape it.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "accel/regs.h"
#include "accel/soft/cpu_state.h"
#include "accel/soft/decode_cache.h"
#include "accel/soft/decoder.h"
#include "accel/soft/mmu.h"
#include "accel/soft/phys_memory.h"

namespace vireo::soft {

// Yield: an instruction set RFLAGS.IF while an interrupt may be pending; the irqchip run loop
// takes it before the next instruction.
enum class StopReason { None, Halt, Shutdown, Interrupted, InternalError, Yield };

struct RunStop {
    StopReason reason;
    std::string detail;
};

// Thrown when exception delivery itself faults twice (SDM Vol. 3 §6.15, "Interrupt 8").
struct TripleFault {};

class Interpreter {
public:
    Interpreter(PhysMemory& mem, IoSink& io, std::vector<CpuidEntry>& cpuid);

    // Runs until HLT, shutdown, or `exit` becomes true (checked at least every kBatch
    // instructions, and between REP iterations).
    RunStop run(const std::atomic<bool>& exit);
    // Executes at most `n` instructions (tests); returns early on a stop.
    RunStop step(std::uint64_t n);
    // One batch (kBatch instructions, less on a stop or `exit`): the irqchip run loop checks
    // for interrupts between slices.
    RunStop run_slice(const std::atomic<bool>& exit);
    // Delivers external interrupt `vector` now (the caller checked RFLAGS.IF and the
    // interrupt shadow). Shutdown when the delivery triple-faults.
    RunStop inject(std::uint8_t vector);
    // The INIT-SIPI-SIPI start of an application processor: real mode at vector * 4 KiB
    // (SDM Vol. 3 §9.4.4, §11.6.1).
    void start_at_sipi(std::uint8_t vector);
    // The LAPIC's "an interrupt may be pending" flag: STI, POPF and IRET that set RFLAGS.IF end
    // the slice when it is up, so the interrupt is not held back by a whole slice.
    void set_interrupt_hint(const std::atomic<bool>* hint) { m_irq_hint = hint; }
    // MSRs beyond the CPU's own, served by the platform (the LAPIC's IA32_TSC_DEADLINE):
    // (index, value out for reads, write?, value in for writes) -> handled. Unhandled: #GP.
    using MsrHook = std::function<bool(std::uint32_t, std::uint64_t&, bool, std::uint64_t)>;
    void set_msr_hook(MsrHook hook) { m_msr_hook = std::move(hook); }
    void interrupts_enabled() {
        if (m_irq_hint && (m_cpu.rflags & fl::IF) != 0 &&
            m_irq_hint->load(std::memory_order_acquire) && m_stop == StopReason::None) {
            m_stop = StopReason::Yield;
        }
    }

    CpuState& state() { return m_cpu; }
    // Call after changing state() from outside (set_regs/set_sregs/restore).
    void state_changed();
    std::uint64_t instructions() const { return m_icount; }
    // The vector of the last exception raised by an instruction (tests), -1 when none yet.
    int last_fault() const { return m_last_fault; }
    // Hits are every executed instruction that did not need a decode.
    DecodeStats decode_stats() const {
        DecodeStats s = m_cache.stats;
        s.hits = m_icount > s.misses ? m_icount - s.misses : 0;
        return s;
    }

    static constexpr std::uint64_t kBatch = 4096;

private:
    // --- run loop (interpreter.cpp) ---
    RunStop run_batch(std::uint64_t n, const std::atomic<bool>* exit);
    const Insn* fetch();
    const Insn* decode_slow(std::uint64_t lin);
    void refill_fetch(std::uint64_t lin);
    [[gnu::cold, gnu::noinline]] void single_step_trap();
    void execute(const Insn& in);
    void update_mode();
    void sync_table();

public:
    // --- helpers shared by the exec_*.cpp files (public for their file-local helpers, such as
    // exec_alu.cpp's binop; the interpreter is not used outside accel/soft and its tests) ---
    bool user() const { return m_cpu.cpl == 3; }
    bool long64() const { return m_mode == CpuMode::Long64; }
    CpuMode mode() const { return m_mode; }
    std::uint64_t& gpr(unsigned r) { return m_cpu.gpr[r]; }
    std::uint64_t get_gpr(unsigned r, unsigned size, bool hi8 = false) const;
    void set_gpr(unsigned r, unsigned size, std::uint64_t v, bool hi8 = false);
    std::uint64_t ea(const Operand& o, const Insn& in) const;  // offset in the segment
    std::uint64_t linear(unsigned seg, std::uint64_t off) const;
    std::uint64_t rd(const Operand& o, const Insn& in);
    void wr(const Operand& o, const Insn& in, std::uint64_t v);
    std::uint64_t mem_read(unsigned seg, std::uint64_t off, unsigned size);
    void mem_write(unsigned seg, std::uint64_t off, unsigned size, std::uint64_t v);
    std::uint64_t next_rip(const Insn& in) const;
    void jump(std::uint64_t target, unsigned opsize);
    bool cond(unsigned cc) const;
    std::uint64_t sp_mask() const;
    void push(std::uint64_t v, unsigned size);
    std::uint64_t pop(unsigned size);  // commits RSP
    std::uint64_t stack_read(std::uint64_t offset_from_sp, unsigned size);

    // --- exceptions.cpp ---
    void deliver(std::uint8_t vector, bool has_error, std::uint32_t error, bool software,
                 std::uint64_t return_rip);
    // Delivery through an 8-byte 32-bit interrupt/trap gate, with the stack switch to the
    // TSS's SS:ESP for the new CPL (deliver32.cpp).
    void deliver_protected32(std::uint8_t vector, bool has_error, std::uint32_t error,
                             bool software, std::uint64_t return_rip);
    void do_iret(const Insn& in);
    void far_return(const Insn& in);
    // Loads a data/stack segment register (MOV Sreg, POP Sreg, LDS...) with the checks of SDM
    // Vol. 3 §5.5 simplified to presence, type and privilege.
    void load_segment(unsigned sreg, std::uint16_t selector);
    // Loads CS for a far transfer to `selector` (same or lower privilege, non-conforming code).
    void load_code_segment(std::uint16_t selector, std::uint8_t new_cpl);
    std::uint64_t read_descriptor(std::uint16_t selector, std::uint64_t* high = nullptr);
    void set_segment_from_descriptor(SegmentCache& s, std::uint16_t selector, std::uint64_t desc);

    // --- exec groups ---
    bool exec_alu(const Insn& in);
    bool exec_muldiv(const Insn& in);
    bool exec_bits(const Insn& in);
    bool exec_move(const Insn& in);
    bool exec_control(const Insn& in);
    bool exec_string(const Insn& in);
    bool exec_system(const Insn& in);
    bool exec_msr(const Insn& in);
    bool exec_fpu(const Insn& in);
    // --- exec_x87.cpp: x87 arithmetic (exec_fpu hands it what it does not take) ---
    bool exec_x87(const Insn& in);
    unsigned x87_top() const;
    void x87_set_top(unsigned top);
    bool x87_empty(unsigned i) const;  // ST(i)'s tag
    void x87_set_tag(unsigned i, bool valid);
    long double x87_raw(unsigned i) const;    // ST(i) as stored
    long double x87_get(unsigned i);          // ST(i) as an operand (underflow if empty)
    void x87_put(unsigned i, long double v);  // ST(i) = v, tagged valid
    void x87_push(long double v);
    void x87_pop();
    void x87_flags(std::uint16_t host_sw, std::uint16_t cc_mask);
    void x87_underflow();
    void x87_begin();  // #NM, #UD, and a pending unmasked exception's #MF
    long double x87_load_mem(const Operand& o, const Insn& in, bool integer,
                             std::uint16_t* deferred = nullptr);
    void x87_env(const Insn& in, const Operand& o);
    bool exec_sse(const Insn& in);
    bool exec_sse_fp(const Insn& in);  // exec_sse_fp.cpp: what exec_sse hands on
    bool exec_legacy(const Insn& in);
    // #UD/#NM checks of x87 (sse=false) and SSE (sse=true) instructions.
    void check_fpu(bool sse);
    void cpuid();
    // Whether the guest's CPUID (as set) has bit `bit` of register `reg` (0 EAX .. 3 EDX) in
    // `leaf`: instructions the CPUID does not advertise raise #UD.
    bool cpuid_has(std::uint32_t leaf, unsigned reg, unsigned bit) const;
    std::uint64_t read_tsc() const;

    CpuState m_cpu;
    Mmu m_mmu;
    IoSink& m_io;
    StopReason m_stop = StopReason::None;
    std::string m_stop_detail;
    const std::atomic<bool>* m_exit = nullptr;
    const std::atomic<bool>* m_irq_hint = nullptr;
    MsrHook m_msr_hook;

private:
    PhysMemory& m_mem;
    std::vector<CpuidEntry>& m_cpuid;
    Decoder m_decoder;
    DecodeCache m_cache;
    CpuMode m_mode = CpuMode::Real16;
    std::uint64_t m_table_gen = ~0ULL;
    // Fetch state: the linear page RIP is on and its cache page (nullptr for MMIO code).
    std::uint64_t m_fetch_lpn = ~0ULL;
    CodePage* m_fetch_page = nullptr;
    Insn m_scratch;  // an uncached instruction (page-crossing or from MMIO)
    std::uint64_t m_icount = 0;
    int m_fault_depth = 0;  // nesting of exception delivery: #DF, then shutdown
    int m_last_fault = -1;

public:
    void invalidate_fetch() { m_fetch_lpn = ~0ULL; }
    void flush_tlb() {
        m_mmu.flush();
        invalidate_fetch();
    }
};

}  // namespace vireo::soft
