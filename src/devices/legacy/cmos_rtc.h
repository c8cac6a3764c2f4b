// The MC146818 real-time clock and CMOS RAM behind ports 0x70 (index, bit 7 = NMI disable) and
// 0x71 (data). The clock reads the host's UTC time; the memory-size bytes that firmware-era
// software reads are filled in. No alarm or periodic interrupts (IRQ 8 is never raised).
#pragma once

#include <array>
#include <cstdint>
#include <ctime>
#include <functional>
#include <mutex>

#include "base/state_archive.h"
#include "bus/bus_device.h"
#include "devices/component.h"

namespace vireo {

struct CmosRtcState {
    std::array<std::uint8_t, 128> ram{};
    std::uint8_t index = 0;
};

class CmosRtc final : public BusDevice, public StateComponent<CmosRtc, CmosRtcState> {
public:
    static constexpr std::uint64_t kPorts = 2;  // 0x70, 0x71
    // `low_memory` is guest RAM below 4 GiB, `high_memory` above it (bytes).
    CmosRtc(
        std::uint64_t low_memory, std::uint64_t high_memory,
        std::function<std::time_t()> clock = [] { return std::time(nullptr); });

    void read(std::uint64_t offset, std::span<std::uint8_t> data) override;
    void write(std::uint64_t offset, std::span<const std::uint8_t> data) override;

    CmosRtcState save_state() const;
    void restore_state(const CmosRtcState& s);

private:
    std::uint8_t read_register(std::uint8_t index);

    mutable std::mutex m_mutex;
    std::function<std::time_t()> m_clock;
    CmosRtcState m_s;
};

template <typename Ar>
void persist(Ar& ar, CmosRtcState& s) {
    ar(s.ram, s.index);
}

}  // namespace vireo
