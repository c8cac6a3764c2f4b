// The soft VM's 8254 programmable interval timer (Intel 82C54 datasheet), as KVM's in-kernel
// PIT is for a KVM VM: counters 0-2 at ports 0x40-0x42, the control word at 0x43, and the
// PC's port 0x61 (bit 0 gates counter 2, bit 5 reads its output) that Linux calibrates the TSC
// with. Counter 0's output is ISA IRQ 0, which the MADT overrides to GSI 2: its rising edges
// pulse IOAPIC pin 2.
//
// Counters run at 1.193182 MHz from the host's steady clock: a count is computed from the time
// it was loaded, never ticked. Modes 0-5 count as the datasheet says; BCD counting is not
// modelled (counts are binary, as every OS programs them). Counter 0's interrupts are raised by
// service(), which the BSP's vCPU calls between slices and when its HLT wait ends at
// next_deadline(); periods that passed unseen are coalesced into one edge, as on a busy host.
// Ports are touched by any vCPU thread: one mutex covers the state.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <span>
#include <vector>

namespace vireo::soft {

class SoftPit {
public:
    using Clock = std::chrono::steady_clock;
    static constexpr std::uint64_t kHz = 1193182;
    // Pulses counter 0's output line (the IOAPIC pin); called with no lock of the PIT's held.
    using IrqPulse = std::function<void()>;
    // Called when the next interrupt time moves earlier, so a sleeping BSP re-arms its wait.
    using Rearm = std::function<void()>;

    SoftPit(IrqPulse irq, Rearm rearm);

    // True when `port` is the PIT's (0x40-0x43) or the speaker port 0x61.
    static bool owns(std::uint16_t port) { return (port >= 0x40 && port <= 0x43) || port == 0x61; }
    void pio_read(std::uint16_t port, std::span<std::uint8_t> data);
    void pio_write(std::uint16_t port, std::span<const std::uint8_t> data);

    // Raises counter 0's interrupt if it is due at `now`.
    void service(Clock::time_point now);
    // When counter 0 next interrupts (time_point::max() when it will not).
    Clock::time_point next_deadline() const;

    // The state in the soft VM's own encoding (VmPlatformState::pit on "soft"); counts are kept
    // as ticks since they were loaded, so a restored counter goes on from where it stood.
    std::vector<std::uint8_t> save() const;
    // Empty (a snapshot from before the soft PIT) leaves the PIT idle. False: malformed.
    bool restore(std::span<const std::uint8_t> bytes);

private:
    struct Counter {
        std::uint32_t count = 0x10000;  // reload value; a written 0 means 65536
        std::uint8_t mode = 0;          // 0-5 (6, 7 alias 2, 3)
        std::uint8_t access = 3;        // 1 LSB, 2 MSB, 3 LSB then MSB
        bool loaded = false;            // a count was written: the counter runs
        bool write_msb_next = false;    // access 3: the next write is the MSB
        bool read_msb_next = false;     // access 3: the next read is the MSB
        std::uint8_t write_lsb = 0;
        bool latched = false;  // a counter-latch command holds `latch`
        std::uint16_t latch = 0;
        bool latch_msb_next = false;
        bool status_latched = false;  // a read-back command holds `status`
        std::uint8_t status = 0;
        bool gate = true;           // counters 0, 1: wired high; 2: port 0x61 bit 0
        Clock::time_point start{};  // when the count was loaded (or the gate re-armed it)
    };

    std::uint64_t ticks_locked(const Counter& c, Clock::time_point now) const;
    std::uint16_t value_locked(const Counter& c, Clock::time_point now) const;
    bool output_locked(const Counter& c, Clock::time_point now) const;
    void load_locked(std::size_t index, std::uint32_t count, Clock::time_point now);
    void control_locked(std::uint8_t word, Clock::time_point now);
    std::uint8_t read_counter_locked(Counter& c, Clock::time_point now);
    void schedule_locked(Clock::time_point now);

    IrqPulse m_irq;
    Rearm m_rearm;
    mutable std::mutex m_mutex;
    std::array<Counter, 3> m_counters{};
    std::uint8_t m_port61 = 0;  // bits 0 (gate 2) and 1 (speaker data) as written
    bool m_refresh = false;     // port 0x61 bit 4 toggles on each read (the old refresh clock)
    // Counter 0: the next interrupt, and the number of periods (edges) it stands for.
    Clock::time_point m_next_irq = Clock::time_point::max();
};

}  // namespace vireo::soft
