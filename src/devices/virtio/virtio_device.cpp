#include "devices/virtio/virtio_device.h"

#include <sys/epoll.h>

#include <fmt/format.h>

#include <algorithm>

#include <spdlog/spdlog.h>

#include "base/log_limiter.h"
#include "devices/virtio/virtio_spec.h"
#include "seccomp/seccomp.h"

namespace vireo::virtio {

VirtioDevice::~VirtioDevice() {
    // Derived destructors must have called reset(); this is the last line of defence against
    // a thread running into a destroyed object.
    if (m_thread.joinable()) {
        m_loop->stop();
        m_thread.join();
    }
}

void VirtioDevice::write_config(std::uint64_t, std::span<const std::uint8_t>) {}

Result<void> VirtioDevice::on_activate(EventLoop&) {
    return ok();
}

std::string VirtioDevice::limiter_metrics(const RateLimiter* limiter, const char* throttled,
                                          const char* events) {
    if (limiter == nullptr) {
        return {};
    }
    const RateLimiterCounters c = limiter->counters();
    return fmt::format(",\"{}\":{},\"{}\":{}", throttled, c.throttled_events, events,
                       c.timer_events);
}

Result<void> VirtioDevice::watch_rate_limiter(EventLoop& loop, RateLimiter* limiter,
                                              std::function<void()> retry) {
    if (limiter == nullptr) {
        return ok();
    }
    return loop.add(limiter->timer_fd(), EPOLLIN,
                    [this, limiter, retry = std::move(retry)](std::uint32_t) {
                        limiter->on_timer();
                        if (!failed()) {
                            retry();
                        }
                    });
}

void VirtioDevice::on_reset() {}

void VirtioDevice::on_pause() {}

void VirtioDevice::pause() {
    if (!m_thread.joinable() || m_paused) {
        return;
    }
    m_loop->stop();
    m_thread.join();
    m_paused = true;
    on_pause();
}

void VirtioDevice::resume() {
    if (!m_paused) {
        return;
    }
    m_paused = false;
    m_thread =
        seccomp::spawn(seccomp::virtio_thread_kind(device_type()), [this] { m_loop->run(); });
}

Result<void> VirtioDevice::activate(GuestMemory& mem, std::uint64_t acked_features,
                                    std::span<VirtQueue> queues, std::span<const EventFd> kicks,
                                    VirtioInterrupt& interrupt, bool start_paused) {
    if (m_loop) {
        return Error("device is already active");
    }
    const bool event_idx = (acked_features & feature(kFeatureEventIdx)) != 0;
    const bool indirect = (acked_features & feature(kFeatureIndirectDesc)) != 0;
    for (std::size_t i = 0; i < queues.size(); ++i) {
        // §4.1.4.3.2: queues the driver did not enable are not used.
        if (!queues[i].config().ready) {
            continue;
        }
        if (auto r = queues[i].activate(mem, event_idx, indirect); !r) {
            return r.error().wrap(fmt::format("queue {}", i));
        }
    }
    auto loop = EventLoop::create();
    if (!loop) {
        return loop.error();
    }
    m_loop = std::move(loop.value());
    m_mem = &mem;
    m_queues = queues;
    m_interrupt = &interrupt;
    m_acked_features = acked_features;
    m_failed = false;
    for (std::size_t i = 0; i < queues.size() && i < kicks.size(); ++i) {
        if (!queues[i].active()) {
            continue;
        }
        const EventFd& kick = kicks[i];
        auto r = m_loop->add(kick.fd(), EPOLLIN, [this, i, &kick](std::uint32_t) {
            kick.consume();
            if (!m_failed) {
                process_queue(i);
            }
        });
        if (!r) {
            return r.error();
        }
    }
    if (auto r = on_activate(*m_loop); !r) {
        m_loop.reset();
        return r.error();
    }
    // Kicks that arrived before activation (or during a previous one) are served on start.
    for (std::size_t i = 0; i < queues.size() && i < kicks.size(); ++i) {
        if (queues[i].active()) {
            kicks[i].signal();
        }
    }
    if (start_paused) {
        m_paused = true;  // resume() starts the thread; the kicks above wait for it
    } else {
        m_thread =
            seccomp::spawn(seccomp::virtio_thread_kind(device_type()), [this] { m_loop->run(); });
    }
    return ok();
}

void VirtioDevice::reset() {
    if (m_thread.joinable()) {
        m_loop->stop();
        m_thread.join();
    }
    m_paused = false;
    on_reset();
    m_loop.reset();
    for (auto& q : m_queues) {
        q.reset();
    }
    m_queues = {};
    m_mem = nullptr;
    m_interrupt = nullptr;
    m_acked_features = 0;
    m_failed = false;
}

void VirtioDevice::note_written(const DescriptorChain& chain, std::uint32_t written) {
    for (const auto& b : chain.buffers) {
        if (written == 0) {
            break;
        }
        if (b.writable) {
            const std::uint32_t n = std::min(b.len, written);
            m_mem->note_write(b.addr, n);
            written -= n;
        }
    }
}

bool VirtioDevice::next_chain(std::size_t index, DescriptorChain& out) {
    VirtQueue& q = m_queues[index];
    for (;;) {
        auto popped = q.pop(*m_mem, out);
        if (!popped) {
            fail(fmt::format("queue {}: {}", index, popped.error().message()));
            return false;
        }
        if (*popped) {
            return true;
        }
        if (!q.enable_notification(*m_mem)) {
            return false;
        }
    }
}

void VirtioDevice::notify_used(std::size_t index) {
    if (m_queues[index].needs_notification(*m_mem)) {
        m_counters.interrupts.fetch_add(1, std::memory_order_relaxed);
        m_interrupt->signal_queue(static_cast<std::uint16_t>(index));
    }
}

void VirtioDevice::signal_config() {
    if (m_interrupt != nullptr) {
        m_interrupt->signal_config();
    }
}

void VirtioDevice::fail(const std::string& what) {
    m_counters.errors.fetch_add(1, std::memory_order_relaxed);
    if (m_failed) {
        return;
    }
    m_failed = true;
    // A driver can break a queue again after every reset: rate limited.
    static LogLimiter limit;
    if (auto note = limit.admit()) {
        spdlog::warn("{}: {}; the device needs a reset{}", name(), what, *note);
    }
    m_interrupt->set_needs_reset();
}

Result<void> VirtioDevice::restore_device_state(std::span<const std::uint8_t> state) {
    if (!state.empty()) {
        return Error(fmt::format("{} keeps no state, the snapshot has {} bytes for it", name(),
                                 state.size()));
    }
    return ok();
}

}  // namespace vireo::virtio
