// virtio-console (virtio 1.2 §5.3) with a single port and no MULTIPORT: receiveq0 (queue 0,
// host -> guest) and transmitq0 (queue 1, guest -> host). The guest sees it as hvc0.
// Configuration (§5.3.4): le16 cols, le16 rows, le32 max_nr_ports, le32 emerg_wr.
#pragma once

#include <array>
#include <deque>
#include <functional>
#include <mutex>

#include "devices/virtio/virtio_device.h"

namespace vireo::virtio {

class VirtioConsole final : public VirtioDevice {
public:
    using Output = std::function<void(std::span<const std::uint8_t>)>;
    // Bytes of host input held while the guest has no receive buffers posted.
    static constexpr std::size_t kInputBufferSize = 64 * 1024;

    // `output` receives guest output on the device thread (and emergency writes on vCPU threads).
    static Result<std::unique_ptr<VirtioConsole>> create(Output output);
    ~VirtioConsole() override;

    std::uint16_t device_type() const override;
    std::uint64_t device_features() const override;
    std::span<const std::uint16_t> queue_max_sizes() const override;
    void read_config(std::uint64_t offset, std::span<std::uint8_t> data) override;
    void write_config(std::uint64_t offset, std::span<const std::uint8_t> data) override;
    std::uint32_t config_size() const override { return 12; }
    std::string name() const override { return "virtio-console"; }

    // Host input for the guest; any thread. Returns how many bytes were taken (the rest do not
    // fit the buffer now: offer them again later).
    std::size_t queue_input(std::span<const std::uint8_t> bytes);

protected:
    Result<void> on_activate(EventLoop& loop) override;
    void process_queue(std::size_t index) override;

private:
    VirtioConsole(Output output, EventFd input_ready);
    void receive();
    void transmit();

    Output m_output;
    EventFd m_input_ready;
    std::array<std::uint16_t, 2> m_queue_sizes;
    DescriptorChain m_chain;
    std::mutex m_input_mutex;
    std::deque<std::uint8_t> m_input;  // guarded by m_input_mutex
};

}  // namespace vireo::virtio
