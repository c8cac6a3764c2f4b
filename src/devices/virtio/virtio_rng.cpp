#include "devices/virtio/virtio_rng.h"

#include <sys/random.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

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

void VirtioRng::process_queue(std::size_t index) {
    serve_queue(index, m_chain,
                [this](const DescriptorChain& chain) -> std::optional<std::uint32_t> {
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

}  // namespace vireo::virtio
