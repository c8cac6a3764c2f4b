// A virtio device as its transport sees it (virtio 1.2 §2-§3), with the device thread every
// vireo virtio device runs on (Firecracker's event_handler.rs): queue kicks, backend fds and the
// work they trigger are handled on that thread, never on a vCPU thread.
//
// Lifecycle: the transport negotiates features and collects queue configuration on vCPU threads;
// at DRIVER_OK it calls activate(), which validates the queues and starts the device thread; a
// driver reset (status 0) calls reset(), which stops the thread before returning, so the
// transport owns the queues again. Between the two, only the device thread touches the queues.
// Behind a transport, the transport is the only caller of activate/reset/pause/resume and
// serializes them (VirtioPciDevice); standalone (unit tests) one thread calls them.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "base/event_fd.h"
#include "base/event_loop.h"
#include "base/rate_limiter.h"
#include "base/result.h"
#include "devices/virtio/virt_queue.h"
#include "memory/guest_memory.h"

namespace vireo::virtio {

// How a device tells the driver about used buffers and configuration changes; the transport
// maps these to MSI-X vectors or the INTx line and ISR bits (§4.1.4.5).
class VirtioInterrupt {
public:
    virtual ~VirtioInterrupt() = default;
    virtual void signal_queue(std::uint16_t queue) = 0;
    virtual void signal_config() = 0;
    // The device met a malformed queue: set DEVICE_NEEDS_RESET and tell the driver (§2.1.2).
    virtual void set_needs_reset() = 0;
};

// A read of `data.size()` bytes at `offset` of a device configuration structure whose bytes are
// `config`: bytes past its end read 0 (§4.1.4.6 leaves them undefined; 0 is what drivers expect).
inline void copy_config(std::span<const std::uint8_t> config, std::uint64_t offset,
                        std::span<std::uint8_t> data) {
    for (std::size_t i = 0; i < data.size(); ++i) {
        const std::uint64_t at = offset + i;
        data[i] = at < config.size() ? config[at] : 0;
    }
}

// Counters every device keeps (exposed later as metrics).
struct VirtioCounters {
    std::atomic<std::uint64_t> requests{0};
    std::atomic<std::uint64_t> bytes_read{0};     // device -> guest
    std::atomic<std::uint64_t> bytes_written{0};  // guest -> device
    std::atomic<std::uint64_t> errors{0};
    std::atomic<std::uint64_t> interrupts{0};
};

class VirtioDevice {
public:
    virtual ~VirtioDevice();

    virtual std::uint16_t device_type() const = 0;
    // Device-specific features (bits 0-23) plus any reserved bits the device needs; the
    // transport adds VERSION_1, EVENT_IDX and INDIRECT_DESC.
    virtual std::uint64_t device_features() const = 0;
    virtual std::span<const std::uint16_t> queue_max_sizes() const = 0;
    // Device configuration space (§4.1.4.6 device-specific structure). Out-of-range reads fill 0.
    virtual void read_config(std::uint64_t offset, std::span<std::uint8_t> data) = 0;
    virtual void write_config(std::uint64_t offset, std::span<const std::uint8_t> data);
    // Size of the device configuration structure in bytes.
    virtual std::uint32_t config_size() const = 0;
    // A short name for logs ("virtio-blk vda").
    virtual std::string name() const = 0;

    // Starts the device with the queues the driver configured. `queues` and `kicks` (one kick
    // eventfd per queue) stay owned by the transport and outlive the activation. With
    // `start_paused` (a restore) the device is set up but its thread waits for resume(): nothing
    // may touch guest memory or raise an interrupt before the rest of the machine (the vCPUs'
    // LAPICs, which an early interrupt would be lost in) is restored.
    Result<void> activate(GuestMemory& mem, std::uint64_t acked_features,
                          std::span<VirtQueue> queues, std::span<const EventFd> kicks,
                          VirtioInterrupt& interrupt, bool start_paused = false);
    // Stops the device thread and returns the device to its pre-activation state.
    void reset();
    bool active() const { return m_thread.joinable(); }
    // Between activate() and reset(), running or paused.
    bool activated() const { return m_loop != nullptr; }
    // Stops queue processing (the device thread) without forgetting anything, after in-flight
    // requests finished; resume() starts it again. Both from the VMM's control thread; no-ops on
    // a device that is not active.
    void pause();
    void resume();
    bool paused() const { return m_paused; }

    const VirtioCounters& counters() const { return m_counters; }
    // Device-specific metrics members, each `,"name":value` (the rate limiters' counters under
    // Firecracker's names); empty by default.
    virtual std::string metrics_extra() const { return {}; }

    // Who tells the driver that the device's configuration changed (the transport: a new
    // config generation and, after DRIVER_OK, a configuration interrupt; §2.5.1). Set once by the
    // transport that owns the device, before any thread uses it.
    void set_config_notifier(std::function<void()> notifier) {
        m_config_notifier = std::move(notifier);
    }

    // The device's own state beyond its queues, for a snapshot (taken paused or inactive). The
    // default is none; restore_device_state() then accepts only an empty state.
    virtual std::vector<std::uint8_t> save_device_state() const { return {}; }
    virtual Result<void> restore_device_state(std::span<const std::uint8_t> state);

protected:
    // Called on the transport's thread inside activate(), before the device thread starts:
    // add backend fds to `loop`, prepare buffers. An error fails activation.
    virtual Result<void> on_activate(EventLoop& loop);
    // A queue was kicked (or a backend event wants the queue served). Device thread.
    virtual void process_queue(std::size_t index) = 0;
    // Called on the transport's thread after the device thread stopped: drop backend fds from
    // the loop's perspective and forget per-activation state.
    virtual void on_reset();
    // Called after the device thread stopped for a pause: finish in-flight work (answer the
    // driver), so nothing touches guest memory until resume().
    virtual void on_pause();

    GuestMemory& memory() { return *m_mem; }
    VirtQueue& queue(std::size_t index) { return m_queues[index]; }
    std::size_t queue_count() const { return m_queues.size(); }
    bool has_feature(unsigned bit) const { return (m_acked_features >> bit) & 1U; }
    EventLoop& loop() { return *m_loop; }
    VirtioCounters& counters() { return m_counters; }
    // The next available chain of queue `index` into `out`: true when there is one; false when
    // the queue is empty (notifications re-enabled and re-checked, so a buffer that arrives
    // meanwhile is not missed) or broken (then fail() was called: check failed()).
    bool next_chain(std::size_t index, DescriptorChain& out);
    // The device has put `written` bytes into the chain's writable buffers, in their order:
    // marks them dirty and tells the memory's write observer (GuestMemory::note_write), before
    // the chain is used. Every device write into guest RAM is noted once it is complete, never
    // when the chain is popped (a live migration takes dirty bits while devices run).
    void note_written(const DescriptorChain& chain, std::uint32_t written);
    // The request loop every device but virtio-blk runs: each available chain of queue `index`
    // is taken into `chain` and handed to `answer`, which serves it and returns the bytes it
    // wrote into the chain's writable buffers; the chain then goes on the used ring, and the
    // driver is notified once at the end. `answer` returns nullopt to stop early with the chain
    // handed back (it called undo_pop(): a full backend). A broken queue stops the loop (fail()).
    template <class Answer>
    void serve_queue(std::size_t index, DescriptorChain& chain, Answer&& answer);
    // `,"THROTTLED":n,"EVENTS":m` for `limiter`'s counters (refused requests, timer wake-ups);
    // empty for a null limiter.
    static std::string limiter_metrics(const RateLimiter* limiter, const char* throttled,
                                       const char* events);
    // Watches `limiter`'s timer on the device loop (from on_activate): when it fires the limiter
    // unblocks and `retry` serves what it held back. Nothing for a null limiter.
    Result<void> watch_rate_limiter(EventLoop& loop, RateLimiter* limiter,
                                    std::function<void()> retry);
    // Interrupts the driver for `queue` when its suppression settings ask for it.
    void notify_used(std::size_t index);
    void signal_config();
    // The device changed its configuration space on its own (a balloon's new target): the
    // transport notes it and tells the driver. Any thread.
    void config_changed() {
        if (m_config_notifier) {
            m_config_notifier();
        }
    }
    // A malformed queue: log once, stop serving this device, ask the driver to reset it.
    void fail(const std::string& what);
    bool failed() const { return m_failed; }

private:
    GuestMemory* m_mem = nullptr;
    std::span<VirtQueue> m_queues;
    VirtioInterrupt* m_interrupt = nullptr;
    std::uint64_t m_acked_features = 0;
    std::unique_ptr<EventLoop> m_loop;
    std::thread m_thread;
    bool m_failed = false;
    bool m_paused = false;
    VirtioCounters m_counters;
    std::function<void()> m_config_notifier;
};

template <class Answer>
void VirtioDevice::serve_queue(std::size_t index, DescriptorChain& chain, Answer&& answer) {
    VirtQueue& q = queue(index);
    bool used = false;
    while (next_chain(index, chain)) {
        const std::optional<std::uint32_t> written = answer(chain);
        if (!written) {
            break;
        }
        note_written(chain, *written);
        if (auto r = q.add_used(memory(), chain.head, *written); !r) {
            fail(r.error().message());
            return;
        }
        used = true;
    }
    if (used && !failed()) {
        notify_used(index);
    }
}

}  // namespace vireo::virtio
