// QEMU's firmware configuration interface (docs/specs/fw_cfg.rst), the minimal part test kernels
// read: the traditional x86 I/O ports, no DMA.
//   0x510  selector (16-bit write): picks an item and rewinds its read offset
//   0x511  data (byte reads): the item's next byte; past its end, and for unknown keys, 0
// Items: 0x0000 signature "QEMU", 0x0001 ID (1: the traditional interface, no DMA),
// 0x0003 RAM size (u64, bytes), 0x0005 vCPU count (u16), 0x000f the most vCPUs (u16). Values are
// little-endian, as QEMU's. vireo gives it to multiboot kernels' machines (with the debug-exit
// port); a Linux guest is not shown one (no ACPI QEMU0002 device).
#pragma once

#include <cstdint>
#include <mutex>
#include <vector>

#include "bus/bus_device.h"
#include "devices/component.h"

namespace vireo {

class FwCfg final : public BusDevice, public Component {
public:
    static constexpr std::uint16_t kPort = 0x510;
    static constexpr std::uint64_t kPorts = 2;
    static constexpr std::uint16_t kSignature = 0x0000;
    static constexpr std::uint16_t kId = 0x0001;
    static constexpr std::uint16_t kRamSize = 0x0003;
    static constexpr std::uint16_t kNbCpus = 0x0005;
    static constexpr std::uint16_t kMaxCpus = 0x000f;

    FwCfg(std::uint16_t cpus, std::uint64_t ram_bytes) : m_cpus(cpus), m_ram(ram_bytes) {}

    void read(std::uint64_t offset, std::span<std::uint8_t> data) override;
    void write(std::uint64_t offset, std::span<const std::uint8_t> data) override;

private:
    std::vector<std::uint8_t> item(std::uint16_t key) const;

    std::uint16_t m_cpus;
    std::uint64_t m_ram;
    std::mutex m_mutex;                // vCPU threads
    std::vector<std::uint8_t> m_item;  // the selected item's bytes
    std::size_t m_offset = 0;
};

}  // namespace vireo
