// The common configuration structure (virtio 1.2 §4.1.4.3) and the device status state machine
// (§2.1, §3.1.1): what the driver reads and writes to negotiate features, configure queues and
// move the device through ACKNOWLEDGE, DRIVER, FEATURES_OK, DRIVER_OK and reset. Every bound the
// device thread later relies on is validated here, at the transition, into the device's own copy
// (DESIGN.md §3).
#include <algorithm>
#include <cstring>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "devices/virtio/virtio_pci_device.h"
#include "devices/virtio/virtio_pci_layout.h"
#include "devices/virtio/virtio_spec.h"

namespace vireo::virtio {

using namespace pci_layout;

namespace {

template <typename T>
void put(std::array<std::uint8_t, kCommonSize>& image, std::uint64_t offset, T value) {
    std::memcpy(image.data() + offset, &value, sizeof(T));
}

template <typename T>
T get(const std::array<std::uint8_t, kCommonSize>& image, std::uint64_t offset) {
    T value;
    std::memcpy(&value, image.data() + offset, sizeof(T));
    return value;
}
}  // namespace

void VirtioPciDevice::common_read(std::uint64_t offset, std::span<std::uint8_t> data) {
    std::lock_guard lock(m_mutex);
    std::array<std::uint8_t, kCommonSize> image{};
    const std::uint64_t features =
        m_device_feature_select < 2 ? m_device_features >> (32 * m_device_feature_select) : 0;
    put(image, kDeviceFeatureSelect, m_device_feature_select);
    put(image, kDeviceFeature, static_cast<std::uint32_t>(features));
    put(image, kDriverFeatureSelect, m_driver_feature_select);
    put(image, kDriverFeature,
        static_cast<std::uint32_t>(
            m_driver_feature_select < 2 ? m_driver_features >> (32 * m_driver_feature_select) : 0));
    put(image, kConfigMsixVector, m_config_vector.load());
    put(image, kNumQueues, static_cast<std::uint16_t>(m_queues.size()));
    put(image, kDeviceStatus, m_status.load());
    put(image, kConfigGeneration, m_config_generation.load());
    put(image, kQueueSelect, m_queue_select);
    if (m_queue_select < m_queues.size()) {
        const auto& c = m_queues[m_queue_select].config();
        put(image, kQueueSize, c.size);
        put(image, kQueueMsixVector, c.msix_vector);
        put(image, kQueueEnable, static_cast<std::uint16_t>(c.ready ? 1 : 0));
        put(image, kQueueNotifyOff, m_queue_select);
        put(image, kQueueDesc, c.desc_table);
        put(image, kQueueDriver, c.avail_ring);
        put(image, kQueueDevice, c.used_ring);
        put(image, kQueueNotifyData, m_queue_select);
    }
    // Unselected queue: §4.1.4.3.1 says queue_size reads 0 for a queue that does not exist.
    const std::size_t n = std::min<std::size_t>(data.size(), kCommonSize - offset);
    std::memcpy(data.data(), image.data() + offset, n);
}

void VirtioPciDevice::common_write(std::uint64_t offset, std::span<const std::uint8_t> data) {
    std::lock_guard lock(m_mutex);
    // Merge the written bytes into an image of the writable fields, then apply every field the
    // access touched; this handles any width and split 64-bit writes alike.
    std::array<std::uint8_t, kCommonSize> image{};
    put(image, kDeviceFeatureSelect, m_device_feature_select);
    put(image, kDriverFeatureSelect, m_driver_feature_select);
    put(image, kDriverFeature,
        static_cast<std::uint32_t>(
            m_driver_feature_select < 2 ? m_driver_features >> (32 * m_driver_feature_select) : 0));
    put(image, kConfigMsixVector, m_config_vector.load());
    put(image, kDeviceStatus, m_status.load());
    put(image, kQueueSelect, m_queue_select);
    VirtQueue* q = m_queue_select < m_queues.size() ? &m_queues[m_queue_select] : nullptr;
    if (q != nullptr) {
        const auto& c = q->config();
        put(image, kQueueSize, c.size);
        put(image, kQueueMsixVector, c.msix_vector);
        put(image, kQueueEnable, static_cast<std::uint16_t>(c.ready ? 1 : 0));
        put(image, kQueueDesc, c.desc_table);
        put(image, kQueueDriver, c.avail_ring);
        put(image, kQueueDevice, c.used_ring);
    }
    const std::size_t n = std::min<std::size_t>(data.size(), kCommonSize - offset);
    std::memcpy(image.data() + offset, data.data(), n);
    const std::uint64_t end = offset + n;
    auto touched = [&](std::uint64_t field, std::uint64_t size) {
        return offset < field + size && field < end;
    };
    const bool active = (m_status.load() & kStatusDriverOk) != 0;
    const bool features_locked = (m_status.load() & kStatusFeaturesOk) != 0;
    // §4.1.4.3.2: the driver configures a queue before enabling it and may not change it after
    // (Linux: "once we do this, there's no way to go back except reset"). Enabled or running,
    // the queue's fields are frozen until reset; the device works from its own validated copy
    // either way (VirtQueue::activate).
    const bool queue_frozen = q != nullptr && (active || q->config().ready);

    if (touched(kDeviceFeatureSelect, 4)) {
        m_device_feature_select = get<std::uint32_t>(image, kDeviceFeatureSelect);
    }
    if (touched(kDriverFeatureSelect, 4)) {
        m_driver_feature_select = get<std::uint32_t>(image, kDriverFeatureSelect);
    }
    if (touched(kDriverFeature, 4) && !features_locked && m_driver_feature_select < 2) {
        const unsigned shift = 32 * m_driver_feature_select;
        const std::uint64_t half = get<std::uint32_t>(image, kDriverFeature);
        m_driver_features = (m_driver_features & ~(0xffffffffULL << shift)) | (half << shift);
    }
    if (touched(kConfigMsixVector, 2)) {
        const auto v = get<std::uint16_t>(image, kConfigMsixVector);
        // §4.1.5.1.2: a vector the device cannot use reads back as NO_VECTOR.
        m_config_vector = v < m_queues.size() + 1 ? v : kNoVector;
    }
    if (touched(kQueueSelect, 2)) {
        m_queue_select = get<std::uint16_t>(image, kQueueSelect);
    }
    if (queue_frozen && (touched(kQueueSize, 6) || touched(kQueueDesc, 24))) {
        warn_guest("{}: queue {} reconfigured after it was enabled: ignored", m_device->name(),
                   m_queue_select);
    }
    if (q != nullptr && !queue_frozen) {
        auto& c = q->config();
        if (touched(kQueueSize, 2)) {
            c.size = get<std::uint16_t>(image, kQueueSize);
        }
        if (touched(kQueueMsixVector, 2)) {
            const auto v = get<std::uint16_t>(image, kQueueMsixVector);
            c.msix_vector = v < m_queues.size() + 1 ? v : kNoVector;
        }
        if (touched(kQueueEnable, 2) && get<std::uint16_t>(image, kQueueEnable) == 1) {
            c.ready = true;  // §4.1.4.3.2: the driver must not write 0
        }
        if (touched(kQueueDesc, 8)) {
            c.desc_table = get<std::uint64_t>(image, kQueueDesc);
        }
        if (touched(kQueueDriver, 8)) {
            c.avail_ring = get<std::uint64_t>(image, kQueueDriver);
        }
        if (touched(kQueueDevice, 8)) {
            c.used_ring = get<std::uint64_t>(image, kQueueDevice);
        }
    }
    static_cast<void>(kQueueReset);  // VIRTIO_F_RING_RESET is not offered
    if (touched(kDeviceStatus, 1)) {
        write_status(get<std::uint8_t>(image, kDeviceStatus));
    }
}

void VirtioPciDevice::write_status(std::uint8_t value) {
    const std::uint8_t old = m_status.load();
    if (value == 0) {
        reset_locked();
        return;
    }
    // §2.1.2: the driver sets status bits and clears them only by writing 0 (reset);
    // DEVICE_NEEDS_RESET is the device's and a driver may write it back either way. A driver
    // that clears DRIVER_OK or FEATURES_OK without a reset would get the queue fields back
    // while the device thread runs on them: refused, and the device stops until reset.
    const auto cleared = static_cast<std::uint8_t>(old & ~value & ~kStatusDeviceNeedsReset);
    if (cleared != 0) {
        warn_guest("{}: driver cleared status bits {:#x} without a reset (status {:#x} -> {:#x})",
                   m_device->name(), cleared, old, value);
        halt_locked();
        return;
    }
    std::uint8_t next = value;
    if ((value & kStatusFeaturesOk) != 0 && (old & kStatusFeaturesOk) == 0) {
        // §3.1.1 step 5-6: accept only a subset of the offered features, and only modern drivers.
        const bool subset = (m_driver_features & ~m_device_features) == 0;
        const bool modern = (m_driver_features & feature(kFeatureVersion1)) != 0;
        if (!subset || !modern) {
            warn_guest("{}: driver features {:#x} refused (offered {:#x})", m_device->name(),
                       m_driver_features, m_device_features);
            next = static_cast<std::uint8_t>(next & ~kStatusFeaturesOk);
        }
    }
    next = static_cast<std::uint8_t>(next | (old & kStatusDeviceNeedsReset));
    m_status = next;
    if ((value & kStatusDriverOk) != 0 && (old & kStatusDriverOk) == 0 &&
        (next & kStatusFeaturesOk) != 0) {
        activate_locked();
    }
}

void VirtioPciDevice::activate_locked(bool start_paused) {
    if (m_device->activated() || m_halted) {
        // DRIVER_OK is set once per reset (write_status refuses clearing it), so this is a
        // restore into a used device or a bug: never a second set of ioeventfds or threads.
        warn_guest("{}: activation while active or halted: ignored", m_device->name());
        return;
    }
    m_active_vectors.clear();
    for (const auto& q : m_queues) {
        m_active_vectors.push_back(q.config().msix_vector);
    }
    register_ioevents_locked(m_config.bar_address(0));
    auto r = m_device->activate(m_mem, m_driver_features, m_queues, m_kicks, *this, start_paused);
    if (!r) {
        warn_guest("{}: cannot start: {}", m_device->name(), r.error().message());
        unregister_ioevents_locked();
        m_status = static_cast<std::uint8_t>(m_status.load() | kStatusDeviceNeedsReset);
        raise(m_config_vector.load(), kIsrConfig);
    }
}

LogLimiter& VirtioPciDevice::guest_warnings() {
    static LogLimiter limit;
    return limit;
}

void VirtioPciDevice::halt_locked() {
    // The device thread stops (after in-flight requests are answered) and stays stopped until
    // the driver resets the device: resume() skips a halted device.
    m_halted = true;
    m_device->pause();
    set_needs_reset();
}

void VirtioPciDevice::reset_locked() {
    m_device->reset();
    m_halted = false;
    unregister_ioevents_locked();
    for (auto& q : m_queues) {
        q.reset();
    }
    for (auto& k : m_kicks) {
        k.consume();
    }
    m_driver_features = 0;
    m_device_feature_select = 0;
    m_driver_feature_select = 0;
    m_queue_select = 0;
    m_config_vector = kNoVector;
    m_status = 0;
    std::lock_guard intx(m_intx_mutex);
    m_isr = 0;
    if (m_intx != nullptr) {
        m_intx->set_level(false);
    }
}

}  // namespace vireo::virtio
