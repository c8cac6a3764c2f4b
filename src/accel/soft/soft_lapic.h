// The soft CPU's local APIC in xAPIC mode (SDM Vol. 3 §11): the register page at IA32_APIC_BASE,
// IRR/ISR/TMR, TPR/PPR, EOI, the spurious-vector register, the LVT timer (one-shot and
// periodic, 1 GHz bus clock like KVM's) and the ICR for IPIs. Registers live in a LapicState
// (register at offset R is at byte R), which is also what get_lapic/set_lapic exchange.
// Interrupts arrive from any thread (IOAPIC, MSI, other vCPUs' IPIs); the owning vCPU polls
// pending() at batch boundaries and sleeps on wait() in HLT.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <span>

#include "accel/regs.h"

namespace vireo::soft {

class SoftLapic {
public:
    using Clock = std::chrono::steady_clock;
    // Where an ICR write sends an IPI: (destination, shorthand, dest mode, delivery mode,
    // vector); the VM routes it to the target LAPICs.
    using IpiSink = std::function<void(std::uint32_t icr_high, std::uint32_t icr_low)>;
    // Called when a level-triggered vector is EOIed (the IOAPIC clears its remote IRR).
    using EoiSink = std::function<void(std::uint8_t vector)>;

    // An application processor (`wait_for_sipi`) starts in the wait-for-SIPI state.
    SoftLapic(std::uint32_t apic_id, IpiSink ipi, EoiSink eoi, bool wait_for_sipi = false);

    std::uint32_t id() const { return m_id; }
    void mmio_read(std::uint32_t offset, std::span<std::uint8_t> data);
    void mmio_write(std::uint32_t offset, std::span<const std::uint8_t> data);

    // Any thread: a fixed interrupt `vector` (level: remember for EOI).
    void accept(std::uint8_t vector, bool level);
    // INIT and SIPI (from the ICR of another vCPU).
    void init_signal();
    void sipi(std::uint8_t vector);
    // vCPU thread: consumes a pending INIT/SIPI; returns the SIPI vector, or -1.
    int take_sipi();
    bool init_pending() const { return m_init.load(); }
    // Restore: whether this vCPU still waits for INIT-SIPI.
    void set_waiting_for_sipi(bool waiting) {
        std::lock_guard lock(m_mutex);
        m_init = waiting;
        m_sipi = -1;
    }

    // vCPU thread: the highest-priority pending vector that can be delivered now (above the
    // processor priority), or -1. Runs the timer first.
    int pending();
    // Whether LVT LINT0 takes the 8259's output: unmasked, ExtINT delivery (SDM Vol. 3 §11.5.1),
    // and the APIC software-enabled.
    bool lint0_extint() const {
        std::lock_guard lock(m_mutex);
        const std::uint32_t lvt = reg(0x350);
        return (reg(0xf0) & 0x100) != 0 && (lvt & (1u << 16)) == 0 && ((lvt >> 8) & 7) == 7;
    }
    // vCPU thread: the interrupt is being delivered: IRR -> ISR.
    void acknowledge(std::uint8_t vector);
    // Sleeps until an interrupt may be pending, the timer fires, `also_until` (another timer the
    // vCPU serves: the BSP's PIT) passes, or wake() is called.
    void wait(Clock::time_point also_until = Clock::time_point::max());
    void wake();
    bool maybe_pending() const { return m_maybe_pending.load(std::memory_order_acquire); }
    const std::atomic<bool>& pending_hint() const { return m_maybe_pending; }
    // The logical APIC ID (LDR bits 31:24) for logical-destination delivery.
    std::uint8_t logical_id() const {
        std::lock_guard lock(m_mutex);
        return static_cast<std::uint8_t>(reg(0xd0) >> 24);
    }

    // IA32_TSC_DEADLINE (SDM Vol. 3 §11.5.4.1): arms the timer in TSC-deadline mode for guest
    // TSC `deadline` (0 disarms), given the guest TSC now and its rate.
    void set_tsc_deadline(std::uint64_t deadline, std::uint64_t tsc_now, std::uint32_t tsc_khz);
    std::uint64_t tsc_deadline() const {
        std::lock_guard lock(m_mutex);
        return m_tsc_deadline;
    }

    LapicState state();
    void set_state(const LapicState& s);

private:
    std::uint32_t reg(std::uint32_t off) const { return m_regs.read(off); }
    void set_reg(std::uint32_t off, std::uint32_t v) { m_regs.write(off, v); }
    static int highest(const LapicState& r, std::uint32_t base);
    void update_timer_locked(Clock::time_point now);
    void start_timer_locked(Clock::time_point now);
    std::uint32_t ppr_locked() const;
    void signal_locked();

    std::uint32_t m_id;
    IpiSink m_ipi;
    EoiSink m_eoi;
    mutable std::mutex m_mutex;
    std::condition_variable m_cv;
    LapicState m_regs;
    // Timer: next expiry, or time_point::max() when not armed.
    Clock::time_point m_deadline = Clock::time_point::max();
    std::chrono::nanoseconds m_period{0};
    std::uint64_t m_tsc_deadline = 0;  // as programmed; 0 once it fired
    std::atomic<bool> m_maybe_pending{false};
    bool m_woken = false;
    std::atomic<bool> m_init{false};
    int m_sipi = -1;
};

}  // namespace vireo::soft
