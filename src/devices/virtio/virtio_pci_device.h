// The virtio-over-PCI transport (virtio 1.2 §4.1), modern only: a PCI function with vendor 0x1af4,
// device 0x1040 + device type, and one 32-bit memory BAR holding every structure the vendor
// capabilities point at:
//
//   BAR 0 + 0x0000  common configuration (§4.1.4.3), 0x40 bytes
//           0x1000  ISR status (§4.1.4.5), 1 byte (read-to-clear)
//           0x2000  device-specific configuration (§4.1.4.6), up to 0x1000 bytes
//           0x3000  notifications (§4.1.4.4): queue n at 0x3000 + 4n (notify_off_multiplier 4)
//           0x4000  MSI-X table (one vector per queue + one for configuration changes)
//           0x6000  MSI-X PBA
//
// Notifications: each queue has a kick eventfd. At DRIVER_OK the transport registers it as an
// ioeventfd at the queue's notify address, so a guest kick wakes the device thread without
// stopping in the VMM; without an ioeventfd registry (or when registration fails) the notify
// write arrives here and signals the same eventfd. Interrupts: MSI-X vectors when the driver
// enabled MSI-X, else INTx (the ISR bits and a level-triggered line, §4.1.5.3-4).
//
// Locking: m_mutex serializes guest accesses (vCPU threads) to the common configuration. The
// device thread never takes it: the status NEEDS_RESET bit, the ISR and the configuration
// vector are atomics, INTx has its own small mutex. reset() of the device (which joins the
// device thread) is called with m_mutex held; that is safe because of this rule.
//
// One owner of the device thread: this transport. Every start and stop of the device thread -
// the driver's DRIVER_OK and reset (vCPU threads), the VMM's pause/resume, a snapshot, a disk
// replaced through the API (control thread) - goes through a method here that holds m_mutex, so
// none of them can interleave (a guest reset during PATCH /drives would otherwise join the
// device thread twice). Nothing else calls VirtioDevice::activate/reset/pause/resume.
//
// Hostile drivers (virtio 1.2 §2.1.2, §4.1.4.3.2): status bits are only cleared by reset - a
// write that clears one halts the device (DEVICE_NEEDS_RESET, thread stopped until reset);
// queue fields are frozen once the queue is enabled; features once FEATURES_OK is set.
#pragma once

#include <array>
#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "base/event_fd.h"
#include "base/log_limiter.h"
#include "bus/io_event.h"
#include "devices/component.h"
#include "devices/pci/msix.h"
#include "devices/pci/pci_device.h"
#include "devices/virtio/virtio_device.h"
#include "irq/irq_line.h"

namespace vireo::virtio {

// What a snapshot saves of a virtio-pci function: its PCI face (config space, MSI-X), the common
// configuration the driver programmed, each queue's configuration and ring positions, and the
// device's own state. Taken while the device is paused, so no request is in flight.
struct VirtioPciState {
    PciConfigSpaceState config;
    MsixTableState msix;
    std::uint8_t status = 0;
    std::uint64_t driver_features = 0;
    std::uint32_t device_feature_select = 0;
    std::uint32_t driver_feature_select = 0;
    std::uint16_t queue_select = 0;
    std::uint8_t config_generation = 0;
    std::uint16_t config_vector = 0xffff;
    std::uint8_t isr = 0;
    std::vector<QueueState> queues;
    std::vector<std::uint8_t> device;  // VirtioDevice::save_device_state()
};

template <typename Ar>
void persist(Ar& ar, VirtioPciState& s) {
    ar(s.config, s.msix, s.status, s.driver_features, s.device_feature_select,
       s.driver_feature_select, s.queue_select, s.config_generation, s.config_vector, s.isr);
    ar.vec(s.queues, 1024);
    ar.vec(s.device, 1 << 20);
}

class VirtioPciDevice final : public PciDevice,
                              public StateComponent<VirtioPciDevice, VirtioPciState>,
                              private VirtioInterrupt {
public:
    static constexpr std::uint64_t kBarSize = 0x8000;

    // `ioevents` may be null (kicks then arrive as MMIO writes), `intx` may be null (no INTx
    // fallback: a driver without MSI-X gets no interrupts).
    static Result<std::unique_ptr<VirtioPciDevice>> create(std::unique_ptr<VirtioDevice> device,
                                                           GuestMemory& mem, MsiController& msi,
                                                           IoEventRegistry* ioevents,
                                                           IrqLine* intx);
    ~VirtioPciDevice() override;

    PciConfigSpace& config_space() override { return m_config; }
    void config_read(std::uint16_t offset, std::span<std::uint8_t> data) override;
    void config_write(std::uint16_t offset, std::span<const std::uint8_t> data) override;
    void bar_read(int bar, std::uint64_t offset, std::span<std::uint8_t> data) override;
    void bar_write(int bar, std::uint64_t offset, std::span<const std::uint8_t> data) override;
    void bar_moved(int bar, std::uint64_t old_address, std::uint64_t new_address) override;

    VirtioDevice& device() { return *m_device; }
    std::uint8_t status() const { return m_status.load(); }

    // The VMM's pause and resume of the device thread (Machine::pause/resume). resume() leaves
    // a device the driver broke halted until the driver resets it.
    void pause() override;
    void resume() override;
    // As the driver's write of status 0 (§4.1.4.3.2): the device thread stops, queues and
    // features are forgotten, ioeventfds removed, interrupts lowered.
    void reset() override;
    // The device's counters: {"device":"vda","requests":..,"bytes_read":..,...}'s members.
    std::string metrics_json() const override;
    // Runs `fn` on the device with the transport lock held: no driver reset or activation can
    // run meanwhile (e.g. VirtioBlk::replace_file, which pauses and resumes the thread itself).
    Result<void> with_device(const std::function<Result<void>(VirtioDevice&)>& fn);
    // The device's configuration changed (e.g. a new disk capacity): bump config_generation
    // and raise the configuration interrupt. Any thread.
    void config_changed();

    // For a snapshot: the device must be paused or inactive.
    VirtioPciState save_state();
    // Into a freshly created device, before any vCPU runs. Checks the state against this device
    // (queue count and sizes, features it offers) and, when the driver had the device running
    // (DRIVER_OK), activates it at the saved ring positions and leaves it paused: resume() of
    // the device starts it. The PCI root must re-decode BARs afterwards.
    Result<void> restore_state(const VirtioPciState& state);

private:
    VirtioPciDevice(std::unique_ptr<VirtioDevice> device, GuestMemory& mem,
                    IoEventRegistry* ioevents, IrqLine* intx);
    Result<void> build(MsiController& msi);

    // VirtioInterrupt, called on the device thread.
    void signal_queue(std::uint16_t queue) override;
    void signal_config() override;
    void set_needs_reset() override;
    void raise(std::uint16_t vector, std::uint8_t isr_bit);

    void common_read(std::uint64_t offset, std::span<std::uint8_t> data);
    void common_write(std::uint64_t offset, std::span<const std::uint8_t> data);
    void write_status(std::uint8_t value);
    void reset_locked();
    void activate_locked(bool start_paused = false);
    void halt_locked();
    // A warning a driver can trigger at will: rate limited (base/log_limiter.h).
    // One budget for every transport warning of the process.
    template <typename... Args>
    static void warn_guest(fmt::format_string<Args...> format, Args&&... args);
    static LogLimiter& guest_warnings();
    void register_ioevents_locked(std::uint64_t bar_address);
    void unregister_ioevents_locked();
    std::uint8_t read_isr();

    std::unique_ptr<VirtioDevice> m_device;
    GuestMemory& m_mem;
    IoEventRegistry* m_ioevents;
    IrqLine* m_intx;
    PciConfigSpace m_config;
    std::unique_ptr<MsixTable> m_msix;
    std::uint16_t m_pci_cfg_cap = 0;  // offset of the VIRTIO_PCI_CAP_PCI_CFG capability

    std::mutex m_mutex;
    std::vector<VirtQueue> m_queues;
    std::vector<EventFd> m_kicks;
    std::uint64_t m_device_features;
    std::uint64_t m_driver_features = 0;
    std::uint32_t m_device_feature_select = 0;
    std::uint32_t m_driver_feature_select = 0;
    std::uint16_t m_queue_select = 0;
    bool m_halted = false;  // the driver broke the status protocol; cleared by reset
    bool m_ioevents_registered = false;
    std::uint64_t m_ioevent_base = 0;
    std::atomic<std::uint8_t> m_status{0};
    std::atomic<std::uint8_t> m_config_generation{0};
    std::atomic<std::uint16_t> m_config_vector{0xffff};
    std::vector<std::uint16_t> m_active_vectors;  // queue vectors, fixed while active

    std::mutex m_intx_mutex;
    std::uint8_t m_isr = 0;  // guarded by m_intx_mutex
};

template <typename... Args>
void VirtioPciDevice::warn_guest(fmt::format_string<Args...> format, Args&&... args) {
    if (auto note = guest_warnings().admit()) {
        spdlog::warn("{}{}", fmt::format(format, std::forward<Args>(args)...), *note);
    }
}

}  // namespace vireo::virtio
