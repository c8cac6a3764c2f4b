#include "accel/soft/soft_pit.h"

#include <algorithm>
#include <cstring>

namespace vireo::soft {

namespace {

constexpr std::uint64_t kNsPerSecond = 1'000'000'000;
constexpr std::uint8_t kSaveVersion = 1;

// The encoding of one counter in save(): fixed-width fields, little-endian as the host.
struct SavedCounter {
    std::uint32_t count;
    std::uint8_t mode, access, loaded, write_msb_next, read_msb_next, write_lsb, latched,
        latch_msb_next, status_latched, status, gate, pad;
    std::uint16_t latch;
    std::uint16_t pad2;
    std::uint64_t ticks;  // since the count was loaded, at the save
};
static_assert(sizeof(SavedCounter) == 32);

std::uint64_t ns_of_ticks(std::uint64_t ticks) {
    // Rounded up: the edge is not before the tick it belongs to.
    const unsigned __int128 ns =
        (static_cast<unsigned __int128>(ticks) * kNsPerSecond) + kNsPerSecond - 1;
    return static_cast<std::uint64_t>(ns / SoftPit::kHz);
}

}  // namespace

SoftPit::SoftPit(IrqPulse irq, Rearm rearm) : m_irq(std::move(irq)), m_rearm(std::move(rearm)) {}

std::uint64_t SoftPit::ticks_locked(const Counter& c, Clock::time_point now) const {
    if (now <= c.start) {
        return 0;
    }
    const auto ns = static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(now - c.start).count());
    return static_cast<std::uint64_t>(static_cast<unsigned __int128>(ns) * kHz / kNsPerSecond);
}

// The counting element's value (datasheet "Mode definitions"): modes 0, 1, 4, 5 count down once
// from the count and wrap; mode 2 reloads every `count` ticks; mode 3 counts down by two twice
// per period.
std::uint16_t SoftPit::value_locked(const Counter& c, Clock::time_point now) const {
    if (!c.loaded) {
        return static_cast<std::uint16_t>(c.count);
    }
    const std::uint64_t d = ticks_locked(c, now);
    switch (c.mode & 3) {
        case 2:
            return static_cast<std::uint16_t>(c.count - (d % c.count));
        case 3:
            return static_cast<std::uint16_t>(c.count - ((2 * d) % c.count));
        default:
            return static_cast<std::uint16_t>((c.count - d) & 0xffff);
    }
}

// OUT (as QEMU's i8254 models it): mode 0 goes high at terminal count and stays; mode 1 is low
// for the count after its trigger; mode 2 pulses once a period; mode 3 is a square wave, high for
// the first half; modes 4 and 5 strobe at terminal count.
bool SoftPit::output_locked(const Counter& c, Clock::time_point now) const {
    if (!c.loaded) {
        return c.mode != 0;
    }
    const std::uint64_t d = ticks_locked(c, now);
    switch (c.mode) {
        case 0:
            return d >= c.count;
        case 1:
            return d < c.count;
        case 2:
        case 6:
            return (d % c.count) == 0 && d != 0;
        case 3:
        case 7:
            return (d % c.count) < ((c.count + 1) >> 1);
        default:
            return d == c.count;
    }
}

void SoftPit::schedule_locked(Clock::time_point now) {
    const Counter& c = m_counters[0];
    m_next_irq = Clock::time_point::max();
    if (!c.loaded) {
        return;
    }
    const std::uint64_t d = ticks_locked(c, now);
    std::uint64_t edge = 0;  // in ticks from the load
    switch (c.mode) {
        case 0:
        case 4:
            if (d >= c.count) {
                return;  // one shot, already gone
            }
            edge = c.count;
            break;
        case 2:
        case 3:
        case 6:
        case 7:
            edge = (d / c.count + 1) * c.count;  // the next rising edge after now
            break;
        default:
            return;  // modes 1 and 5 need a gate trigger, and counter 0's gate is wired high
    }
    m_next_irq = c.start + std::chrono::nanoseconds(ns_of_ticks(edge));
}

void SoftPit::load_locked(std::size_t index, std::uint32_t count, Clock::time_point now) {
    Counter& c = m_counters[index];
    c.count = count == 0 ? 0x10000 : count;
    c.loaded = true;
    c.start = now;
    if (index == 0) {
        schedule_locked(now);
    }
}

void SoftPit::control_locked(std::uint8_t word, Clock::time_point now) {
    const unsigned select = word >> 6;
    if (select == 3) {
        // Read-back: bit 5 clear latches the counts, bit 4 clear the status, of the counters
        // whose bits (1, 2, 3 for counters 0, 1, 2) are set.
        for (std::size_t i = 0; i < 3; ++i) {
            if ((word & (2u << i)) == 0) {
                continue;
            }
            Counter& c = m_counters[i];
            if ((word & 0x20) == 0 && !c.latched) {
                c.latched = true;
                c.latch = value_locked(c, now);
                c.latch_msb_next = false;
            }
            if ((word & 0x10) == 0 && !c.status_latched) {
                c.status_latched = true;
                c.status = static_cast<std::uint8_t>((output_locked(c, now) ? 0x80 : 0) |
                                                     (c.loaded ? 0 : 0x40) | (c.access << 4) |
                                                     (c.mode << 1));
            }
        }
        return;
    }
    Counter& c = m_counters[select];
    const unsigned access = (word >> 4) & 3;
    if (access == 0) {
        // Counter latch command: the first one holds until read.
        if (!c.latched) {
            c.latched = true;
            c.latch = value_locked(c, now);
            c.latch_msb_next = false;
        }
        return;
    }
    // A control word sets the mode and stops the counter until a count is written. BCD (bit 0)
    // is not modelled: counts stay binary.
    c.access = static_cast<std::uint8_t>(access);
    c.mode = static_cast<std::uint8_t>((word >> 1) & 7);
    c.loaded = false;
    c.write_msb_next = false;
    c.read_msb_next = false;
    c.latched = false;
    c.status_latched = false;
    if (select == 0) {
        m_next_irq = Clock::time_point::max();
    }
}

std::uint8_t SoftPit::read_counter_locked(Counter& c, Clock::time_point now) {
    if (c.status_latched) {
        c.status_latched = false;
        return c.status;
    }
    const bool latched = c.latched;
    const std::uint16_t v = latched ? c.latch : value_locked(c, now);
    bool msb = false;
    bool done = true;
    switch (c.access) {
        case 1:
            break;
        case 2:
            msb = true;
            break;
        default:
            msb = latched ? c.latch_msb_next : c.read_msb_next;
            done = msb;
            if (latched) {
                c.latch_msb_next = !c.latch_msb_next;
            } else {
                c.read_msb_next = !c.read_msb_next;
            }
            break;
    }
    if (latched && done) {
        c.latched = false;
        c.latch_msb_next = false;
    }
    return static_cast<std::uint8_t>(msb ? v >> 8 : v);
}

void SoftPit::pio_read(std::uint16_t port, std::span<std::uint8_t> data) {
    if (data.empty()) {
        return;
    }
    std::fill(data.begin(), data.end(), 0);
    const auto now = Clock::now();
    std::lock_guard lock(m_mutex);
    if (port == 0x61) {
        m_refresh = !m_refresh;
        data[0] = static_cast<std::uint8_t>((m_port61 & 3) | (m_refresh ? 0x10 : 0) |
                                            (output_locked(m_counters[2], now) ? 0x20 : 0));
        return;
    }
    if (port == 0x43) {
        data[0] = 0xff;  // the control word register is write-only
        return;
    }
    data[0] = read_counter_locked(m_counters[port - 0x40], now);
}

void SoftPit::pio_write(std::uint16_t port, std::span<const std::uint8_t> data) {
    if (data.empty()) {
        return;
    }
    const std::uint8_t v = data[0];
    const auto now = Clock::now();
    bool rearm = false;
    {
        std::lock_guard lock(m_mutex);
        if (port == 0x61) {
            Counter& c = m_counters[2];
            const bool gate = (v & 1) != 0;
            // A rising gate (re)starts modes 1, 2, 3 and 5 (datasheet "Gate"); modes 0 and 4
            // are not paused by a low gate here (as in QEMU).
            if (gate && !c.gate && c.loaded && c.mode != 0 && c.mode != 4) {
                c.start = now;
            }
            c.gate = gate;
            m_port61 = v & 3;
            return;
        }
        if (port == 0x43) {
            control_locked(v, now);
            return;
        }
        const std::size_t index = port - 0x40;
        Counter& c = m_counters[index];
        switch (c.access) {
            case 1:
                load_locked(index, v, now);
                break;
            case 2:
                load_locked(index, std::uint32_t{v} << 8, now);
                break;
            default:
                if (!c.write_msb_next) {
                    c.write_lsb = v;
                    c.write_msb_next = true;
                } else {
                    c.write_msb_next = false;
                    load_locked(index, c.write_lsb | (std::uint32_t{v} << 8), now);
                }
                break;
        }
        rearm = index == 0 && c.loaded && !c.write_msb_next;
    }
    if (rearm) {
        m_rearm();
    }
}

void SoftPit::service(Clock::time_point now) {
    {
        std::lock_guard lock(m_mutex);
        if (now < m_next_irq) {
            return;
        }
        schedule_locked(now);
    }
    m_irq();
}

SoftPit::Clock::time_point SoftPit::next_deadline() const {
    std::lock_guard lock(m_mutex);
    return m_next_irq;
}

std::vector<std::uint8_t> SoftPit::save() const {
    const auto now = Clock::now();
    std::lock_guard lock(m_mutex);
    std::vector<std::uint8_t> out(4 + 3 * sizeof(SavedCounter));
    out[0] = kSaveVersion;
    out[1] = m_port61;
    out[2] = m_refresh ? 1 : 0;
    for (std::size_t i = 0; i < 3; ++i) {
        const Counter& c = m_counters[i];
        SavedCounter s{};
        s.count = c.count;
        s.mode = c.mode;
        s.access = c.access;
        s.loaded = c.loaded;
        s.write_msb_next = c.write_msb_next;
        s.read_msb_next = c.read_msb_next;
        s.write_lsb = c.write_lsb;
        s.latched = c.latched;
        s.latch_msb_next = c.latch_msb_next;
        s.status_latched = c.status_latched;
        s.status = c.status;
        s.gate = c.gate;
        s.latch = c.latch;
        s.ticks = c.loaded ? ticks_locked(c, now) : 0;
        std::memcpy(out.data() + 4 + i * sizeof(SavedCounter), &s, sizeof(s));
    }
    return out;
}

bool SoftPit::restore(std::span<const std::uint8_t> bytes) {
    const auto now = Clock::now();
    std::array<Counter, 3> counters{};
    std::uint8_t port61 = 0;
    bool refresh = false;
    if (!bytes.empty()) {
        if (bytes.size() != 4 + 3 * sizeof(SavedCounter) || bytes[0] != kSaveVersion ||
            bytes[1] > 3 || bytes[2] > 1) {
            return false;
        }
        port61 = bytes[1];
        refresh = bytes[2] != 0;
        for (std::size_t i = 0; i < 3; ++i) {
            SavedCounter s{};
            std::memcpy(&s, bytes.data() + 4 + i * sizeof(SavedCounter), sizeof(s));
            const bool flags_ok = s.loaded <= 1 && s.write_msb_next <= 1 && s.read_msb_next <= 1 &&
                                  s.latched <= 1 && s.latch_msb_next <= 1 &&
                                  s.status_latched <= 1 && s.gate <= 1;
            if (s.count == 0 || s.count > 0x10000 || s.mode > 7 || s.access == 0 || s.access > 3 ||
                !flags_ok) {
                return false;
            }
            Counter& c = counters[i];
            c.count = s.count;
            c.mode = s.mode;
            c.access = s.access;
            c.loaded = s.loaded != 0;
            c.write_msb_next = s.write_msb_next != 0;
            c.read_msb_next = s.read_msb_next != 0;
            c.write_lsb = s.write_lsb;
            c.latched = s.latched != 0;
            c.latch_msb_next = s.latch_msb_next != 0;
            c.status_latched = s.status_latched != 0;
            c.status = s.status;
            c.gate = s.gate != 0;
            c.latch = s.latch;
            // Going on from where it stood: loaded that many ticks before now. Beyond 2^40 ticks
            // (about 10 days) only the phase within the count matters.
            constexpr std::uint64_t kMaxTicks = 1ULL << 40;
            if (s.ticks > kMaxTicks) {
                s.ticks = kMaxTicks - (kMaxTicks % s.count) + (s.ticks % s.count);
            }
            c.start = now - std::chrono::nanoseconds(ns_of_ticks(s.ticks));
        }
    }
    {
        std::lock_guard lock(m_mutex);
        m_counters = counters;
        m_port61 = port61;
        m_refresh = refresh;
        schedule_locked(now);
    }
    m_rearm();
    return true;
}

}  // namespace vireo::soft
