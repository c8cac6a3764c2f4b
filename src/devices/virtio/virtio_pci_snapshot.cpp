// A virtio-pci function's snapshot: the transport's registers and config space, each queue's
// configuration and ring positions, and the device's own state. Restore checks it against this
// device before activating anything (a state file is input).
#include <algorithm>
#include <cstring>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "devices/virtio/virtio_pci_device.h"
#include "devices/virtio/virtio_pci_layout.h"
#include "devices/virtio/virtio_spec.h"

namespace vireo::virtio {

using namespace pci_layout;

VirtioPciState VirtioPciDevice::save_state() {
    std::lock_guard lock(m_mutex);
    VirtioPciState s;
    s.config = m_config.save_state();
    s.msix = m_msix->save_state();
    s.status = m_status.load();
    s.driver_features = m_driver_features;
    s.device_feature_select = m_device_feature_select;
    s.driver_feature_select = m_driver_feature_select;
    s.queue_select = m_queue_select;
    s.config_generation = m_config_generation.load();
    s.config_vector = m_config_vector.load();
    {
        std::lock_guard intx(m_intx_mutex);
        s.isr = m_isr;
    }
    for (const auto& q : m_queues) {
        s.queues.push_back(q.state());
    }
    s.device = m_device->save_device_state();
    return s;
}

Result<void> VirtioPciDevice::restore_state(const VirtioPciState& s) {
    std::lock_guard lock(m_mutex);
    const auto name = m_device->name();
    if (m_device->activated()) {
        return Error(name + ": cannot restore into a running device");
    }
    if (s.queues.size() != m_queues.size()) {
        return Error(fmt::format("{}: the snapshot has {} queues, this device {}", name,
                                 s.queues.size(), m_queues.size()));
    }
    for (std::size_t i = 0; i < m_queues.size(); ++i) {
        if (s.queues[i].config.size > m_queues[i].max_size()) {
            return Error(fmt::format("{}: queue {} has size {}, more than its maximum {}", name, i,
                                     s.queues[i].config.size, m_queues[i].max_size()));
        }
    }
    if ((s.driver_features & ~m_device_features) != 0) {
        return Error(fmt::format(
            "{}: the driver had features {:#x}, this device offers only {:#x} (a different "
            "configuration, e.g. a read-only disk?)",
            name, s.driver_features, m_device_features));
    }
    if (auto r = m_config.restore_state(s.config); !r) {
        return r.error().wrap(name);
    }
    if (auto r = m_msix->restore_state(s.msix); !r) {
        return r.error().wrap(name);
    }
    if (auto r = m_device->restore_device_state(s.device); !r) {
        return r.error().wrap(name);
    }
    m_driver_features = s.driver_features;
    m_device_feature_select = s.device_feature_select;
    m_driver_feature_select = s.driver_feature_select;
    m_queue_select = s.queue_select;
    m_config_generation = s.config_generation;
    m_config_vector = s.config_vector;
    {
        std::lock_guard intx(m_intx_mutex);
        m_isr = s.isr;
        if (m_intx != nullptr) {
            m_intx->set_level(m_isr != 0);
        }
    }
    for (std::size_t i = 0; i < m_queues.size(); ++i) {
        m_queues[i].restore(s.queues[i]);
    }
    m_status = s.status;
    const std::uint8_t running = kStatusDriverOk | kStatusFeaturesOk;
    if ((s.status & running) == running && (s.status & kStatusDeviceNeedsReset) == 0) {
        // Paused: the device thread starts at the machine's resume, after every vCPU and the
        // interrupt controllers are restored. On failure NEEDS_RESET is set, as at boot.
        activate_locked(/*start_paused=*/true);
    }
    return ok();
}

}  // namespace vireo::virtio
