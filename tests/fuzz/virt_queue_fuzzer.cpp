// libFuzzer target: a split virtqueue as a hostile driver lays it out. The input is the guest's
// memory (descriptor table, available ring, indirect tables, all at fixed places in a 64 KiB
// RAM image) plus a header choosing the queue size and features. The device pops chains, writes
// into their writable buffers and returns them until the queue is empty or found malformed.
// Nothing may crash, touch memory outside guest RAM, or loop forever.
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "devices/virtio/virt_queue.h"
#include "devices/virtio/virtio_spec.h"

namespace {

constexpr std::uint64_t kRamSize = 64 * 1024;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace vireo;
    using namespace vireo::virtio;
    if (size < 4) {
        return 0;
    }
    static GuestMemory* mem = [] {
        std::array<MemoryRegionSpec, 1> spec{{{GuestAddress{0}, kRamSize}}};
        return new GuestMemory(std::move(GuestMemory::create(spec).value()));
    }();
    // Header: queue size exponent, features, ring offsets (scaled so they are often valid).
    const std::uint16_t qsize = static_cast<std::uint16_t>(1U << (data[0] % 10));  // 1..512
    const bool event_idx = (data[1] & 1) != 0;
    const bool indirect = (data[1] & 2) != 0;
    const std::uint64_t desc = (data[2] % 16) * 0x1000ULL;
    const std::uint64_t avail = desc + 16ULL * qsize + (data[3] % 4) * 2;
    const std::uint64_t used = (avail + 4 + 2ULL * qsize + 2 + 3) & ~3ULL;

    std::array<std::uint8_t, 4096> zero{};
    for (std::uint64_t a = 0; a < kRamSize; a += zero.size()) {
        static_cast<void>(mem->write(GuestAddress{a}, zero));
    }
    const std::size_t body = std::min<std::size_t>(size - 4, kRamSize - desc);
    static_cast<void>(mem->write(GuestAddress{desc}, std::span(data + 4, body)));

    VirtQueue q(kMaxQueueSize);
    q.config().size = qsize;
    q.config().desc_table = desc;
    q.config().avail_ring = avail;
    q.config().used_ring = used;
    if (!q.activate(*mem, event_idx, indirect)) {
        return 0;
    }
    DescriptorChain chain;
    chain.buffers.reserve(kMaxQueueSize);
    // A well-behaved device stops at the first error; bound the rounds anyway.
    for (int round = 0; round < 2 * kMaxQueueSize; ++round) {
        auto popped = q.pop(*mem, chain);
        if (!popped || !*popped) {
            break;
        }
        std::uint32_t written = 0;
        for (const auto& b : chain.buffers) {
            if (!b.writable) {
                continue;
            }
            auto s = mem->slice(b.addr, b.len);
            if (!s) {
                __builtin_trap();  // pop() promised the range is inside RAM
            }
            std::fill(s->begin(), s->end(), std::uint8_t{0xa5});
            written += b.len;
        }
        if (!q.add_used(*mem, chain.head, written)) {
            break;
        }
        static_cast<void>(q.needs_notification(*mem));
        static_cast<void>(q.enable_notification(*mem));
    }
    return 0;
}
