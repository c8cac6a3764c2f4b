#include "accel/soft/soft_lapic.h"

#include <algorithm>

#include <cstring>

namespace vireo::soft {

namespace {

// xAPIC register offsets (SDM Vol. 3 Table 11-1).
constexpr std::uint32_t kId = 0x20, kVersion = 0x30, kTpr = 0x80, kPpr = 0xa0, kEoi = 0xb0,
                        kLdr = 0xd0, kDfr = 0xe0, kSvr = 0xf0, kIsr = 0x100, kTmr = 0x180,
                        kIrr = 0x200, kEsr = 0x280, kIcrLow = 0x300, kIcrHigh = 0x310,
                        kLvtTimer = 0x320, kLvtLint0 = 0x350, kLvtLint1 = 0x360, kLvtError = 0x370,
                        kTimerInitial = 0x380, kTimerCurrent = 0x390, kTimerDivide = 0x3e0;
constexpr std::uint32_t kLvtMasked = 1u << 16;

bool test(const LapicState& r, std::uint32_t base, std::uint8_t v) {
    return (r.read(base + 0x10 * (v / 32)) >> (v % 32)) & 1;
}
void set(LapicState& r, std::uint32_t base, std::uint8_t v, bool on) {
    const std::uint32_t off = base + 0x10 * (v / 32);
    const std::uint32_t bit = 1u << (v % 32);
    r.write(off, on ? (r.read(off) | bit) : (r.read(off) & ~bit));
}

// TDCR bits 0,1,3 -> divide by 2, 4, 8, 16, 32, 64, 128, 1 (SDM Vol. 3 Figure 11-10).
std::uint64_t divisor(std::uint32_t tdcr) {
    const std::uint32_t v = (tdcr & 3) | ((tdcr >> 1) & 4);
    return v == 7 ? 1 : 2ULL << v;
}

}  // namespace

SoftLapic::SoftLapic(std::uint32_t apic_id, IpiSink ipi, EoiSink eoi, bool wait_for_sipi)
    : m_id(apic_id), m_ipi(std::move(ipi)), m_eoi(std::move(eoi)), m_init(wait_for_sipi) {
    // Power-up state (SDM Vol. 3 §11.4.7.1): LVT entries masked, SVR 0xff (software disabled).
    set_reg(kId, apic_id << 24);
    set_reg(kVersion, 0x00050014);  // version 0x14, 6 LVT entries (max LVT 5)
    set_reg(kDfr, 0xffffffff);
    set_reg(kSvr, 0xff);
    for (std::uint32_t off = kLvtTimer; off <= kLvtError; off += 0x10) {
        set_reg(off, kLvtMasked);
    }
}

int SoftLapic::highest(const LapicState& r, std::uint32_t base) {
    for (int i = 7; i >= 0; --i) {
        const std::uint32_t w = r.read(base + 0x10 * static_cast<std::uint32_t>(i));
        if (w != 0) {
            return i * 32 + 31 - __builtin_clz(w);
        }
    }
    return -1;
}

std::uint32_t SoftLapic::ppr_locked() const {
    // PPR = max(TPR class, ISR class) (SDM Vol. 3 §11.8.3.1).
    const std::uint32_t tpr = reg(kTpr) & 0xff;
    const int isr = highest(m_regs, kIsr);
    const std::uint32_t isr_class = isr < 0 ? 0 : static_cast<std::uint32_t>(isr) & 0xf0;
    return (tpr & 0xf0) >= isr_class ? tpr : isr_class;
}

void SoftLapic::signal_locked() {
    m_maybe_pending.store(true, std::memory_order_release);
    m_woken = true;
    m_cv.notify_all();
}

void SoftLapic::accept(std::uint8_t vector, bool level) {
    std::lock_guard lock(m_mutex);
    if ((reg(kSvr) & 0x100) == 0 || vector < 16) {
        return;  // software-disabled APIC, or an illegal vector (ESR, not modelled)
    }
    set(m_regs, kIrr, vector, true);
    set(m_regs, kTmr, vector, level);
    signal_locked();
}

void SoftLapic::init_signal() {
    std::lock_guard lock(m_mutex);
    m_init = true;
    m_sipi = -1;
    signal_locked();
}

void SoftLapic::sipi(std::uint8_t vector) {
    std::lock_guard lock(m_mutex);
    if (m_init) {
        m_sipi = vector;
        signal_locked();
    }
}

int SoftLapic::take_sipi() {
    std::lock_guard lock(m_mutex);
    if (m_sipi < 0) {
        return -1;
    }
    const int v = m_sipi;
    m_sipi = -1;
    m_init = false;
    return v;
}

void SoftLapic::update_timer_locked(Clock::time_point now) {
    if (now < m_deadline) {
        return;
    }
    const std::uint32_t lvt = reg(kLvtTimer);
    if ((lvt & kLvtMasked) == 0 && (reg(kSvr) & 0x100) != 0) {
        set(m_regs, kIrr, static_cast<std::uint8_t>(lvt & 0xff), true);
        set(m_regs, kTmr, static_cast<std::uint8_t>(lvt & 0xff), false);
        m_maybe_pending.store(true, std::memory_order_release);
    }
    m_tsc_deadline = 0;
    if (((lvt >> 17) & 3) == 1 && m_period.count() > 0) {
        // Periodic: the next expiry after `now` (missed periods collapse into one interrupt).
        const auto missed = (now - m_deadline) / m_period;
        m_deadline += m_period * (missed + 1);
    } else {
        m_deadline = Clock::time_point::max();
    }
}

void SoftLapic::set_tsc_deadline(std::uint64_t deadline, std::uint64_t tsc_now,
                                 std::uint32_t tsc_khz) {
    std::lock_guard lock(m_mutex);
    if (((reg(kLvtTimer) >> 17) & 3) != 2) {
        return;  // ignored unless the LVT timer is in TSC-deadline mode
    }
    m_tsc_deadline = deadline;
    m_period = {};
    if (deadline == 0) {
        m_deadline = Clock::time_point::max();
        return;
    }
    const auto now = Clock::now();
    const std::uint64_t ticks = deadline > tsc_now ? deadline - tsc_now : 0;
    const auto ns = std::chrono::nanoseconds(
        static_cast<std::int64_t>(static_cast<double>(ticks) * 1e6 / (tsc_khz ? tsc_khz : 1)));
    m_deadline = now + ns;
    signal_locked();  // a sleeping HLT re-arms its wait with the new deadline
}

void SoftLapic::start_timer_locked(Clock::time_point now) {
    if (((reg(kLvtTimer) >> 17) & 3) == 2) {
        return;  // TSC-deadline mode: TMICT is ignored
    }
    const std::uint64_t initial = reg(kTimerInitial);
    if (initial == 0) {
        m_deadline = Clock::time_point::max();
        m_period = {};
        return;
    }
    // 1 GHz bus clock: one tick per nanosecond before the divider.
    m_period = std::chrono::nanoseconds(initial * divisor(reg(kTimerDivide)));
    m_deadline = now + m_period;
}

int SoftLapic::pending() {
    std::lock_guard lock(m_mutex);
    update_timer_locked(Clock::now());
    m_maybe_pending.store(false, std::memory_order_relaxed);
    const int irr = highest(m_regs, kIrr);
    if (irr < 0 || (reg(kSvr) & 0x100) == 0) {
        return -1;
    }
    m_maybe_pending.store(true, std::memory_order_relaxed);  // still there until acknowledged
    return (static_cast<std::uint32_t>(irr) & 0xf0) > (ppr_locked() & 0xf0) ? irr : -1;
}

void SoftLapic::acknowledge(std::uint8_t vector) {
    std::lock_guard lock(m_mutex);
    set(m_regs, kIrr, vector, false);
    set(m_regs, kIsr, vector, true);
    m_maybe_pending.store(highest(m_regs, kIrr) >= 0, std::memory_order_relaxed);
}

void SoftLapic::wait(Clock::time_point also_until) {
    std::unique_lock lock(m_mutex);
    if (!m_woken) {
        const Clock::time_point until = std::min(m_deadline, also_until);
        if (until == Clock::time_point::max()) {
            m_cv.wait(lock, [&] { return m_woken; });
        } else {
            m_cv.wait_until(lock, until, [&] { return m_woken; });
        }
    }
    m_woken = false;
}

void SoftLapic::wake() {
    std::lock_guard lock(m_mutex);
    m_woken = true;
    m_cv.notify_all();
}

void SoftLapic::mmio_read(std::uint32_t offset, std::span<std::uint8_t> data) {
    std::uint32_t v = 0;
    const std::uint32_t off = offset & 0xff0;
    {
        std::lock_guard lock(m_mutex);
        const auto now = Clock::now();
        update_timer_locked(now);
        if (off == kPpr) {
            v = ppr_locked();
        } else if (off == kTimerCurrent) {
            if (m_deadline != Clock::time_point::max() && m_deadline > now) {
                const auto left =
                    std::chrono::duration_cast<std::chrono::nanoseconds>(m_deadline - now);
                v = static_cast<std::uint32_t>(static_cast<std::uint64_t>(left.count()) /
                                               divisor(reg(kTimerDivide)));
            }
        } else if (off < 0x400) {
            v = reg(off);
        }
    }
    // Registers are 32 bits on 16-byte boundaries; narrower reads see the low bytes.
    const std::uint32_t shift = 8 * (offset & 3);
    const std::uint64_t x = static_cast<std::uint64_t>(v) >> shift;
    for (std::size_t i = 0; i < data.size(); ++i) {
        data[i] = i < 4 ? static_cast<std::uint8_t>(x >> (8 * i)) : 0;
    }
}

void SoftLapic::mmio_write(std::uint32_t offset, std::span<const std::uint8_t> data) {
    if ((offset & 0xf) != 0 || data.size() < 4) {
        return;  // only aligned 32-bit writes are defined
    }
    std::uint32_t v = 0;
    std::memcpy(&v, data.data(), 4);
    const std::uint32_t off = offset & 0xff0;
    std::uint32_t icr_high = 0, icr_low = 0;
    int eoi_vector = -1;
    {
        std::lock_guard lock(m_mutex);
        const auto now = Clock::now();
        update_timer_locked(now);
        switch (off) {
            case kTpr:
                set_reg(kTpr, v & 0xff);
                break;
            case kEoi: {
                const int isr = highest(m_regs, kIsr);
                if (isr >= 0) {
                    set(m_regs, kIsr, static_cast<std::uint8_t>(isr), false);
                    if (test(m_regs, kTmr, static_cast<std::uint8_t>(isr))) {
                        eoi_vector = isr;
                    }
                }
                if (highest(m_regs, kIrr) >= 0) {
                    m_maybe_pending.store(true, std::memory_order_release);
                }
                break;
            }
            case kLdr:
                set_reg(kLdr, v & 0xff000000);
                break;
            case kDfr:
                set_reg(kDfr, v | 0x0fffffff);
                break;
            case kSvr:
                set_reg(kSvr, v & 0x13ff);
                break;
            case kEsr:
                set_reg(kEsr, 0);
                break;
            case kIcrHigh:
                set_reg(kIcrHigh, v & 0xff000000);
                break;
            case kIcrLow:
                set_reg(kIcrLow, v & ~(1u << 12));  // delivery status: always idle
                icr_high = reg(kIcrHigh);
                icr_low = v;
                break;
            case kLvtTimer:
            case kLvtLint0:
            case kLvtLint1:
            case kLvtError:
            case 0x330:
            case 0x340: {
                // A software-disabled APIC keeps every LVT masked (SDM Vol. 3 §11.4.7.2).
                const std::uint32_t mask = (reg(kSvr) & 0x100) ? 0 : kLvtMasked;
                if (off == kLvtTimer && (((reg(kLvtTimer) ^ v) >> 17) & 3) != 0) {
                    m_deadline = Clock::time_point::max();  // a mode change disarms the timer
                    m_tsc_deadline = 0;
                }
                set_reg(off, v | mask);
                break;
            }
            case kTimerInitial:
                set_reg(kTimerInitial, v);
                start_timer_locked(now);
                break;
            case kTimerDivide:
                set_reg(kTimerDivide, v & 0xb);
                break;
            default:
                break;  // read-only or reserved
        }
    }
    if (off == kIcrLow) {
        m_ipi(icr_high, icr_low);
    }
    if (eoi_vector >= 0) {
        m_eoi(static_cast<std::uint8_t>(eoi_vector));
    }
}

LapicState SoftLapic::state() {
    std::lock_guard lock(m_mutex);
    return m_regs;
}

void SoftLapic::set_state(const LapicState& s) {
    std::lock_guard lock(m_mutex);
    m_regs = s;
    start_timer_locked(Clock::now());
    m_maybe_pending.store(highest(m_regs, kIrr) >= 0, std::memory_order_release);
}

}  // namespace vireo::soft
