// The soft VM's I/O APIC (82093AA; Intel's IOAPIC datasheet §3.2): 24 pins, each with a 64-bit
// redirection entry (vector, delivery mode, destination mode, polarity, trigger mode, mask,
// destination), reached through IOREGSEL (offset 0x00) and IOWIN (0x10) at 0xfec00000. Level
// pins keep Remote IRR until the LAPIC's EOI for their vector. Pins are set from device threads;
// one mutex serialises the pins and the register window.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <mutex>
#include <span>
#include <vector>

namespace vireo::soft {

class SoftIoApic {
public:
    static constexpr std::uint64_t kBase = 0xfec00000;
    static constexpr std::uint32_t kPins = 24;
    // Delivers (destination, logical, vector, level) to the LAPICs.
    using Deliver =
        std::function<void(std::uint8_t dest, bool logical, std::uint8_t vector, bool level)>;

    explicit SoftIoApic(Deliver deliver);

    void set_level(std::uint32_t pin, bool high);
    void eoi(std::uint8_t vector);
    void mmio_read(std::uint64_t offset, std::span<std::uint8_t> data);
    void mmio_write(std::uint64_t offset, std::span<const std::uint8_t> data);

    std::vector<std::uint8_t> save() const;
    bool restore(std::span<const std::uint8_t> bytes);

private:
    // Sends pin `pin` if it is unmasked and (for level pins) not waiting for an EOI.
    void service_locked(std::uint32_t pin);

    Deliver m_deliver;
    mutable std::mutex m_mutex;
    std::uint32_t m_select = 0;
    std::uint32_t m_id = 0;
    std::array<std::uint64_t, kPins> m_redir{};
    std::array<bool, kPins> m_level{};  // current input level
};

}  // namespace vireo::soft
