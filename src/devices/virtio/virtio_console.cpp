#include "devices/virtio/virtio_console.h"

#include <sys/epoll.h>

#include <algorithm>
#include <cstring>

#include "devices/virtio/virtio_spec.h"

namespace vireo::virtio {

namespace {

constexpr unsigned kFeatureEmergWrite = 2;  // §5.3.3 VIRTIO_CONSOLE_F_EMERG_WRITE
constexpr std::uint64_t kEmergWrOffset = 8;
constexpr std::size_t kReceiveQueue = 0;
constexpr std::size_t kTransmitQueue = 1;

}  // namespace

Result<std::unique_ptr<VirtioConsole>> VirtioConsole::create(Output output) {
    auto ready = EventFd::create();
    if (!ready) {
        return ready.error();
    }
    return std::unique_ptr<VirtioConsole>(
        new VirtioConsole(std::move(output), std::move(ready.value())));
}

VirtioConsole::VirtioConsole(Output output, EventFd input_ready)
    : m_output(std::move(output)),
      m_input_ready(std::move(input_ready)),
      m_queue_sizes{kMaxQueueSize, kMaxQueueSize} {
    m_chain.buffers.reserve(kMaxQueueSize);
}

VirtioConsole::~VirtioConsole() {
    reset();
}

std::uint16_t VirtioConsole::device_type() const {
    return kDeviceConsole;
}

std::uint64_t VirtioConsole::device_features() const {
    return feature(kFeatureEmergWrite);
}

std::span<const std::uint16_t> VirtioConsole::queue_max_sizes() const {
    return m_queue_sizes;
}

void VirtioConsole::read_config(std::uint64_t offset, std::span<std::uint8_t> data) {
    // cols = rows = 0 (no size feature), max_nr_ports = 1 (ignored without MULTIPORT),
    // emerg_wr reads 0.
    std::array<std::uint8_t, 12> config{};
    config[4] = 1;
    copy_config(config, offset, data);
}

void VirtioConsole::write_config(std::uint64_t offset, std::span<const std::uint8_t> data) {
    // §5.3.6.1: a write to emerg_wr outputs one character, even before DRIVER_OK.
    if (offset == kEmergWrOffset && !data.empty()) {
        m_output(data.first(1));
    }
}

std::size_t VirtioConsole::queue_input(std::span<const std::uint8_t> bytes) {
    std::size_t taken;
    {
        std::lock_guard lock(m_input_mutex);
        taken = std::min(bytes.size(), kInputBufferSize - m_input.size());
        m_input.insert(m_input.end(), bytes.begin(), bytes.begin() + static_cast<long>(taken));
    }
    if (taken > 0) {
        m_input_ready.signal();
    }
    return taken;
}

Result<void> VirtioConsole::on_activate(EventLoop& loop) {
    return loop.add(m_input_ready.fd(), EPOLLIN, [this](std::uint32_t) {
        m_input_ready.consume();
        if (!failed() && queue(kReceiveQueue).active()) {
            receive();
        }
    });
}

void VirtioConsole::process_queue(std::size_t index) {
    if (index == kReceiveQueue) {
        receive();
    } else if (index == kTransmitQueue) {
        transmit();
    }
}

void VirtioConsole::receive() {
    serve_queue(kReceiveQueue, m_chain,
                [this](const DescriptorChain& chain) -> std::optional<std::uint32_t> {
                    std::lock_guard lock(m_input_mutex);
                    if (m_input.empty()) {
                        queue(kReceiveQueue).undo_pop();  // nothing to give: keep the buffer
                        return std::nullopt;
                    }
                    std::uint32_t written = 0;
                    for (const auto& b : chain.buffers) {
                        if (!b.writable || m_input.empty()) {
                            continue;
                        }
                        const auto n = static_cast<std::uint32_t>(
                            std::min<std::size_t>(b.len, m_input.size()));
                        auto dst = memory().slice(b.addr, n);
                        if (!dst) {
                            continue;
                        }
                        std::copy_n(m_input.begin(), n, dst->begin());
                        m_input.erase(m_input.begin(), m_input.begin() + n);
                        written += n;
                    }
                    counters().bytes_read.fetch_add(written, std::memory_order_relaxed);
                    return written;
                });
}

void VirtioConsole::transmit() {
    serve_queue(kTransmitQueue, m_chain,
                [this](const DescriptorChain& chain) -> std::optional<std::uint32_t> {
                    for (const auto& b : chain.buffers) {
                        if (b.writable) {
                            continue;
                        }
                        auto src = memory().slice(b.addr, b.len);
                        if (src) {
                            m_output(*src);
                        }
                    }
                    counters().requests.fetch_add(1, std::memory_order_relaxed);
                    counters().bytes_written.fetch_add(chain.readable_bytes,
                                                       std::memory_order_relaxed);
                    return 0;
                });
}

}  // namespace vireo::virtio
