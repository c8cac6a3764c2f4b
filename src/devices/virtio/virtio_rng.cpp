#include "devices/virtio/virtio_rng.h"

#include <sys/random.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "base/state_archive.h"
#include "devices/virtio/virtio_spec.h"

namespace vireo::virtio {

VirtioRng::VirtioRng() : m_queue_sizes{kMaxQueueSize} {
    m_chain.buffers.reserve(kMaxQueueSize);
}

VirtioRng::~VirtioRng() {
    reset();
}

std::uint16_t VirtioRng::device_type() const {
    return kDeviceEntropy;
}

std::uint64_t VirtioRng::device_features() const {
    return 0;
}

std::span<const std::uint16_t> VirtioRng::queue_max_sizes() const {
    return m_queue_sizes;
}

void VirtioRng::read_config(std::uint64_t, std::span<std::uint8_t> data) {
    std::fill(data.begin(), data.end(), std::uint8_t{0});
}

Result<void> VirtioRng::on_activate(EventLoop& loop) {
    m_limited = false;
    return watch_rate_limiter(loop, m_limiter.get(), [this] {
        m_limited = false;
        process_queue(0);
    });
}

void VirtioRng::process_queue(std::size_t index) {
    if (m_limited) {
        return;
    }
    serve_queue(
        index, m_chain,
        [this, index](const DescriptorChain& chain) -> std::optional<std::uint32_t> {
            if (m_limiter &&
                !m_limiter->consume(
                    std::min<std::uint64_t>(chain.writable_bytes, kMaxBytesPerRequest), 1)) {
                queue(index).undo_pop();  // served when the limiter's timer fires
                m_limited = true;
                return std::nullopt;
            }
            std::uint32_t written = 0;
            for (const auto& b : chain.buffers) {
                if (!b.writable || written >= kMaxBytesPerRequest) {
                    continue;
                }
                const std::uint32_t want = std::min(b.len, kMaxBytesPerRequest - written);
                auto dst = memory().slice(b.addr, want);
                if (!dst) {
                    continue;  // pop() checked the range; unreachable
                }
                std::size_t done = 0;
                while (done < want) {
                    ssize_t n = ::getrandom(dst->data() + done, want - done, 0);
                    if (n < 0) {
                        if (errno == EINTR) {
                            continue;
                        }
                        break;
                    }
                    done += static_cast<std::size_t>(n);
                }
                written += static_cast<std::uint32_t>(done);
            }
            counters().requests.fetch_add(1, std::memory_order_relaxed);
            counters().bytes_read.fetch_add(written, std::memory_order_relaxed);
            return written;
        });
}

std::vector<std::uint8_t> VirtioRng::save_device_state() const {
    if (!m_limiter) {
        return {};
    }
    RateLimiterState s = m_limiter->state();
    return save_to_bytes(s);
}

Result<void> VirtioRng::restore_device_state(std::span<const std::uint8_t> state) {
    if (state.empty()) {
        return ok();
    }
    auto loaded = load_from_bytes<RateLimiterState>(state);
    if (!loaded) {
        return loaded.error().wrap("saved virtio-rng state");
    }
    if (m_limiter) {
        if (auto r = m_limiter->restore(*loaded); !r) {
            return r.error().wrap("virtio-rng rate_limiter");
        }
    }
    return ok();
}

}  // namespace vireo::virtio
