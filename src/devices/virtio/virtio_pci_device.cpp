// The PCI side of the virtio transport: the device's identity and capabilities in config space,
// BAR 0's regions, ioeventfds on the notify region, interrupts (MSI-X or INTx with the ISR).
// The driver-facing state machine is in virtio_pci_common_cfg.cpp, snapshots in
// virtio_pci_snapshot.cpp.
#include "devices/virtio/virtio_pci_device.h"

#include <algorithm>
#include <cstring>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "devices/virtio/virtio_pci_layout.h"
#include "devices/virtio/virtio_spec.h"

namespace vireo::virtio {

using namespace pci_layout;

namespace {

std::uint32_t class_code(std::uint16_t type) {
    switch (type) {
        case kDeviceNet:
            return 0x020000;  // network controller, Ethernet
        case kDeviceBlock:
            return 0x018000;  // mass storage, other
        case kDeviceConsole:
            return 0x078000;  // communication controller, other
        default:
            return 0x00ff00;  // unclassified
    }
}

// struct virtio_pci_cap without cap_vndr/cap_next (which add_capability() writes):
// cap_len, cfg_type, bar, id, padding[2], le32 offset, le32 length.
std::vector<std::uint8_t> virtio_cap(std::uint8_t type, std::uint32_t offset, std::uint32_t length,
                                     std::size_t extra) {
    std::vector<std::uint8_t> body(14 + extra, 0);
    body[0] = static_cast<std::uint8_t>(16 + extra);
    body[1] = type;
    body[2] = 0;  // BAR 0
    std::memcpy(&body[6], &offset, 4);
    std::memcpy(&body[10], &length, 4);
    return body;
}

}  // namespace

Result<std::unique_ptr<VirtioPciDevice>> VirtioPciDevice::create(
    std::unique_ptr<VirtioDevice> device, GuestMemory& mem, MsiController& msi,
    IoEventRegistry* ioevents, IrqLine* intx) {
    if (device->queue_max_sizes().empty() || device->queue_max_sizes().size() > kMaxQueues) {
        return Error(fmt::format("{}: {} queues is not supported", device->name(),
                                 device->queue_max_sizes().size()));
    }
    if (device->config_size() > kDeviceCfgMax) {
        return Error(fmt::format("{}: configuration space too large", device->name()));
    }
    std::unique_ptr<VirtioPciDevice> d(new VirtioPciDevice(std::move(device), mem, ioevents, intx));
    if (auto r = d->build(msi); !r) {
        return r.error();
    }
    return d;
}

VirtioPciDevice::VirtioPciDevice(std::unique_ptr<VirtioDevice> device, GuestMemory& mem,
                                 IoEventRegistry* ioevents, IrqLine* intx)
    : m_device(std::move(device)),
      m_mem(mem),
      m_ioevents(ioevents),
      m_intx(intx),
      m_config(PciHeader{
          .vendor_id = kVendorId,
          .device_id = static_cast<std::uint16_t>(kModernDeviceIdBase + m_device->device_type()),
          .class_code = class_code(m_device->device_type()),
          .revision_id = 1,  // §4.1.2.1: modern devices have revision 1 or higher
          .subsystem_vendor_id = kVendorId,
          .subsystem_id = kSubsystemId,
          .interrupt_pin = PciInterruptPin::IntA,
      }),
      m_device_features(m_device->device_features() | feature(kFeatureVersion1) |
                        feature(kFeatureEventIdx) | feature(kFeatureIndirectDesc)) {
    for (std::uint16_t size : m_device->queue_max_sizes()) {
        m_queues.emplace_back(size);
    }
    m_device->set_config_notifier([this] { config_changed(); });
}

Result<void> VirtioPciDevice::build(MsiController& msi) {
    for (std::size_t i = 0; i < m_queues.size(); ++i) {
        auto kick = EventFd::create();
        if (!kick) {
            return kick.error();
        }
        m_kicks.push_back(std::move(kick.value()));
    }
    if (auto r = m_config.add_bar(0, kBarSize, PciBarKind::Memory32, false); !r) {
        return r.error();
    }
    const auto notify_len = static_cast<std::uint32_t>(m_queues.size() * kNotifyMultiplier);
    std::vector<std::uint8_t> notify = virtio_cap(kCapNotifyCfg, kNotifyOffset, notify_len, 4);
    std::memcpy(&notify[14], &kNotifyMultiplier, 4);
    const std::vector<std::vector<std::uint8_t>> caps = {
        virtio_cap(kCapCommonCfg, kCommonOffset, kCommonSize, 0),
        notify,
        virtio_cap(kCapIsrCfg, kIsrOffset, 1, 0),
        virtio_cap(kCapDeviceCfg, kDeviceCfgOffset,
                   std::max<std::uint32_t>(m_device->config_size(), 4), 0),
    };
    for (const auto& body : caps) {
        if (auto r = m_config.add_capability(pci::kCapVendorSpecific, body); !r) {
            return r.error();
        }
    }
    // §4.1.4.9: the PCI configuration access capability, an alternative window into the BAR
    // (pci_cfg_data follows the capability header).
    auto pci_cfg =
        m_config.add_capability(pci::kCapVendorSpecific, virtio_cap(kCapPciCfg, 0, 0, 4));
    if (!pci_cfg) {
        return pci_cfg.error();
    }
    m_pci_cfg_cap = *pci_cfg;
    // bar (+4), offset (+8) and length (+12) and pci_cfg_data (+16) are driver-writable.
    const std::array<std::uint8_t, 1> bar_mask{0xff};
    m_config.set_write_mask(static_cast<std::uint16_t>(m_pci_cfg_cap + 4), bar_mask);
    const std::array<std::uint8_t, 12> rest_mask{0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                                 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    m_config.set_write_mask(static_cast<std::uint16_t>(m_pci_cfg_cap + 8), rest_mask);

    auto msix = MsixTable::create(msi, m_queues.size() + 1);
    if (!msix) {
        return msix.error();
    }
    m_msix = std::move(msix.value());
    auto attached = m_msix->attach(m_config, MsixLayout{0, kMsixTableOffset, 0, kMsixPbaOffset});
    if (!attached) {
        return attached.error();
    }
    return ok();
}

VirtioPciDevice::~VirtioPciDevice() {
    std::lock_guard lock(m_mutex);
    m_device->reset();
    unregister_ioevents_locked();
}

void VirtioPciDevice::config_read(std::uint16_t offset, std::span<std::uint8_t> data) {
    const std::uint16_t window = static_cast<std::uint16_t>(m_pci_cfg_cap + 16);
    if (offset >= window && offset < window + 4) {
        // §4.1.4.9.1: a read of pci_cfg_data reads `length` bytes of the BAR at `offset`.
        const std::uint32_t at = m_config.read32(static_cast<std::uint16_t>(m_pci_cfg_cap + 8));
        const std::uint32_t len = m_config.read32(static_cast<std::uint16_t>(m_pci_cfg_cap + 12));
        std::array<std::uint8_t, 4> value{};
        if (m_config.read8(static_cast<std::uint16_t>(m_pci_cfg_cap + 4)) == 0 &&
            (len == 1 || len == 2 || len == 4) && at < kBarSize && at % len == 0) {
            bar_read(0, at, std::span(value).first(len));
        }
        for (std::size_t i = 0; i < data.size(); ++i) {
            const std::size_t k = offset - window + i;
            data[i] = k < value.size() ? value[k] : 0;
        }
        return;
    }
    m_config.read(offset, data);
}

void VirtioPciDevice::config_write(std::uint16_t offset, std::span<const std::uint8_t> data) {
    m_config.write(offset, data);
    m_msix->config_written(offset, data.size());
    const std::uint16_t window = static_cast<std::uint16_t>(m_pci_cfg_cap + 16);
    if (offset == window) {
        const std::uint32_t at = m_config.read32(static_cast<std::uint16_t>(m_pci_cfg_cap + 8));
        const std::uint32_t len = m_config.read32(static_cast<std::uint16_t>(m_pci_cfg_cap + 12));
        if (m_config.read8(static_cast<std::uint16_t>(m_pci_cfg_cap + 4)) == 0 &&
            (len == 1 || len == 2 || len == 4) && len <= data.size() && at < kBarSize &&
            at % len == 0) {
            bar_write(0, at, data.first(len));
        }
    }
}

void VirtioPciDevice::bar_read(int bar, std::uint64_t offset, std::span<std::uint8_t> data) {
    std::fill(data.begin(), data.end(), std::uint8_t{0});
    if (bar != 0) {
        return;
    }
    if (m_msix->bar_read(bar, offset, data)) {
        return;
    }
    if (offset < kCommonOffset + kCommonSize) {
        common_read(offset, data);
    } else if (offset == kIsrOffset) {
        if (!data.empty()) {
            data[0] = read_isr();
        }
    } else if (offset >= kDeviceCfgOffset && offset < kDeviceCfgOffset + kDeviceCfgMax) {
        m_device->read_config(offset - kDeviceCfgOffset, data);
    }
}

void VirtioPciDevice::bar_write(int bar, std::uint64_t offset, std::span<const std::uint8_t> data) {
    if (bar != 0) {
        return;
    }
    if (m_msix->bar_write(bar, offset, data)) {
        return;
    }
    if (offset < kCommonOffset + kCommonSize) {
        common_write(offset, data);
    } else if (offset >= kDeviceCfgOffset && offset < kDeviceCfgOffset + kDeviceCfgMax) {
        m_device->write_config(offset - kDeviceCfgOffset, data);
    } else if (offset >= kNotifyOffset &&
               offset < kNotifyOffset + m_queues.size() * kNotifyMultiplier) {
        // A kick that did not go through an ioeventfd.
        m_kicks[(offset - kNotifyOffset) / kNotifyMultiplier].signal();
    }
}

void VirtioPciDevice::bar_moved(int bar, std::uint64_t, std::uint64_t new_address) {
    if (bar != 0) {
        return;
    }
    std::lock_guard lock(m_mutex);
    if (m_ioevents_registered) {
        unregister_ioevents_locked();
        register_ioevents_locked(new_address);
    }
}

void VirtioPciDevice::pause() {
    std::lock_guard lock(m_mutex);
    m_device->pause();
}

void VirtioPciDevice::reset() {
    std::lock_guard lock(m_mutex);
    reset_locked();
}

void VirtioPciDevice::resume() {
    std::lock_guard lock(m_mutex);
    if (!m_halted) {
        m_device->resume();
    }
}

std::string VirtioPciDevice::metrics_json() const {
    const auto& c = std::as_const(*m_device).counters();
    return fmt::format(
        "\"device\":\"{}\",\"requests\":{},\"bytes_read\":{},\"bytes_written\":{},"
        "\"errors\":{},\"interrupts\":{}{}",
        m_device->name(), c.requests.load(), c.bytes_read.load(), c.bytes_written.load(),
        c.errors.load(), c.interrupts.load(), m_device->metrics_extra());
}

Result<void> VirtioPciDevice::with_device(const std::function<Result<void>(VirtioDevice&)>& fn) {
    std::lock_guard lock(m_mutex);
    return fn(*m_device);
}

void VirtioPciDevice::register_ioevents_locked(std::uint64_t bar_address) {
    if (m_ioevents == nullptr || bar_address == 0) {
        return;
    }
    unregister_ioevents_locked();  // one registration per kick eventfd, whatever the caller
    bool all = true;
    for (std::size_t i = 0; i < m_queues.size(); ++i) {
        IoEventAddress where{true, bar_address + kNotifyOffset + i * kNotifyMultiplier, 2, {}};
        if (auto r = m_ioevents->add_ioevent(where, m_kicks[i].fd()); !r) {
            warn_guest("{}: queue {} notifications through MMIO exits: {}", m_device->name(), i,
                       r.error().message());
            all = false;
        }
    }
    static_cast<void>(all);
    m_ioevents_registered = true;
    m_ioevent_base = bar_address;
}

void VirtioPciDevice::unregister_ioevents_locked() {
    if (!m_ioevents_registered) {
        return;
    }
    for (std::size_t i = 0; i < m_queues.size(); ++i) {
        IoEventAddress where{true, m_ioevent_base + kNotifyOffset + i * kNotifyMultiplier, 2, {}};
        static_cast<void>(m_ioevents->remove_ioevent(where, m_kicks[i].fd()));
    }
    m_ioevents_registered = false;
}

void VirtioPciDevice::signal_queue(std::uint16_t queue) {
    const std::uint16_t vector =
        queue < m_active_vectors.size() ? m_active_vectors[queue] : kNoVector;
    raise(vector, kIsrQueue);
}

void VirtioPciDevice::signal_config() {
    raise(m_config_vector.load(), kIsrConfig);
}

void VirtioPciDevice::config_changed() {
    m_config_generation.fetch_add(1);
    if ((m_status.load() & kStatusDriverOk) != 0) {
        signal_config();
    }
}

void VirtioPciDevice::set_needs_reset() {
    m_status.fetch_or(kStatusDeviceNeedsReset);
    signal_config();
}

void VirtioPciDevice::raise(std::uint16_t vector, std::uint8_t isr_bit) {
    if (m_msix->enabled()) {
        // §4.1.5.4: with MSI-X the ISR is not used; no vector means no interrupt.
        if (vector != kNoVector) {
            static_cast<void>(m_msix->notify(vector));
        }
        return;
    }
    if (m_intx == nullptr) {
        return;
    }
    std::lock_guard lock(m_intx_mutex);
    m_isr |= isr_bit;
    m_config.set_interrupt_status(true);
    if (!m_config.intx_disabled()) {
        m_intx->set_level(true);
    }
}

std::uint8_t VirtioPciDevice::read_isr() {
    std::lock_guard lock(m_intx_mutex);
    const std::uint8_t value = m_isr;
    m_isr = 0;
    m_config.set_interrupt_status(false);
    if (m_intx != nullptr) {
        m_intx->set_level(false);
    }
    return value;
}

}  // namespace vireo::virtio
