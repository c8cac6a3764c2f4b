// libFuzzer target: the PCI layer as a hostile guest drives it. The input is a sequence of 9-byte
// records (target and direction/width, 32-bit offset, 32-bit value) run against a PciRoot's
// CF8/CFC ports, ECAM and MMIO/port windows, with a device behind it whose BAR 0 holds an MSI-X
// table and PBA; device-side MSI-X notifications are interleaved. Nothing may crash, and the
// snapshot state must round-trip.
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "devices/pci/msix.h"
#include "devices/pci/pci_root.h"

namespace {

class NullRoute final : public vireo::MsiRoute {
public:
    vireo::Result<void> set_message(const vireo::MsiMessage&) override { return vireo::ok(); }
    void trigger() override {}
};

class NullMsiController final : public vireo::MsiController {
public:
    vireo::Result<std::unique_ptr<vireo::MsiRoute>> create_msi_route() override {
        return std::unique_ptr<vireo::MsiRoute>(std::make_unique<NullRoute>());
    }
};

// BAR 0 (16 KiB, 32-bit): MSI-X table at 0, PBA at 0x2000. BAR 2 (4 KiB, 64-bit) and BAR 4
// (32 ports) are plain registers.
class FuzzDevice final : public vireo::PciDevice {
public:
    explicit FuzzDevice(vireo::MsiController& msi)
        : m_config(vireo::PciHeader{.vendor_id = 0x1af4,
                                    .device_id = 0x1041,
                                    .class_code = 0x020000,
                                    .interrupt_pin = vireo::PciInterruptPin::IntA}) {
        static_cast<void>(m_config.add_bar(0, 0x4000, vireo::PciBarKind::Memory32, false));
        static_cast<void>(m_config.add_bar(2, 0x1000, vireo::PciBarKind::Memory64, true));
        static_cast<void>(m_config.add_bar(4, 0x20, vireo::PciBarKind::Io, false));
        auto table = vireo::MsixTable::create(msi, 5);
        if (table) {
            m_msix = std::move(table).value();
            static_cast<void>(m_msix->attach(m_config, {0, 0, 0, 0x2000}));
        }
    }
    vireo::PciConfigSpace& config_space() override { return m_config; }
    void config_write(std::uint16_t offset, std::span<const std::uint8_t> data) override {
        m_config.write(offset, data);
        m_msix->config_written(offset, data.size());
    }
    void bar_read(int bar, std::uint64_t offset, std::span<std::uint8_t> data) override {
        if (m_msix->bar_read(bar, offset, data)) {
            return;
        }
        for (std::size_t i = 0; i < data.size(); ++i) {
            data[i] = offset + i < m_regs.size() ? m_regs[offset + i] : 0xff;
        }
    }
    void bar_write(int bar, std::uint64_t offset, std::span<const std::uint8_t> data) override {
        if (m_msix->bar_write(bar, offset, data)) {
            return;
        }
        for (std::size_t i = 0; i < data.size() && offset + i < m_regs.size(); ++i) {
            m_regs[offset + i] = data[i];
        }
    }
    vireo::MsixTable& msix() { return *m_msix; }

private:
    vireo::PciConfigSpace m_config;
    std::unique_ptr<vireo::MsixTable> m_msix;
    std::array<std::uint8_t, 64> m_regs{};
};

std::uint32_t le32(const std::uint8_t* p) {
    return std::uint32_t{p[0]} | (std::uint32_t{p[1]} << 8) | (std::uint32_t{p[2]} << 16) |
           (std::uint32_t{p[3]} << 24);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    constexpr std::uint64_t kMmio32 = 0xc0000000;
    constexpr std::uint64_t kMmio64 = 0x10'0000'0000;
    constexpr std::uint64_t kIo = 0x1000;
    NullMsiController msi;
    auto root =
        vireo::PciRoot::create({{kMmio32, 0x2000'0000}, {kMmio64, 0x10'0000'0000}, {kIo, 0x1000}});
    if (!root) {
        __builtin_trap();
    }
    auto device = std::make_shared<FuzzDevice>(msi);
    if (!(*root)->add_device(device).ok() ||
        !(*root)->add_device(std::make_shared<FuzzDevice>(msi)).ok()) {
        __builtin_trap();
    }
    const std::shared_ptr<vireo::BusDevice> targets[] = {
        (*root)->config_io(), (*root)->ecam(), (*root)->mmio32_window(), (*root)->mmio64_window(),
        (*root)->io_window()};
    // Offsets stay near where things live most of the time, with room to miss.
    const std::uint64_t spans[] = {vireo::PciRoot::kConfigPorts + 1,
                                   2 * vireo::PciRoot::kEcamBusSize, 0x40000, 0x40000, 0x1000};

    for (std::size_t i = 0; i + 9 <= size; i += 9) {
        const std::uint8_t op = data[i];
        const std::uint32_t offset = le32(&data[i + 1]);
        const std::uint32_t value = le32(&data[i + 5]);
        const std::size_t target = op % 6;
        if (target == 5) {
            static_cast<void>(device->msix().notify(offset % 6));
            continue;
        }
        std::array<std::uint8_t, 8> buf{};
        for (std::size_t b = 0; b < buf.size(); ++b) {
            buf[b] = static_cast<std::uint8_t>(value >> (8 * (b % 4)));
        }
        const std::size_t width = std::size_t{1} << ((op >> 4) & 0x3);  // 1, 2, 4 or 8 bytes
        const std::uint64_t at = offset % spans[target];
        if (op & 0x80) {
            targets[target]->write(at, std::span<const std::uint8_t>(buf.data(), width));
        } else {
            targets[target]->read(at, std::span<std::uint8_t>(buf.data(), width));
        }
    }

    const auto config = device->config_space().save_state();
    const auto table = device->msix().save_state();
    const auto root_state = (*root)->save_state();
    if (!device->config_space().restore_state(config).ok() ||
        !device->msix().restore_state(table).ok()) {
        __builtin_trap();
    }
    (*root)->restore_state(root_state);
    return 0;
}
