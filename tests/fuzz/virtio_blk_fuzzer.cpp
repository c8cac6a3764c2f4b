// libFuzzer target: virtio-blk requests as a hostile driver builds them. The input is guest
// memory (descriptor table, available ring, request headers and segments); every chain the queue
// yields is parsed as a request and validated against a small disk, and the data iovecs are
// written the way the backend would write them. Nothing may crash or reach outside guest RAM.
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "devices/virtio/virt_queue.h"
#include "devices/virtio/virtio_blk_request.h"
#include "devices/virtio/virtio_spec.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace vireo;
    using namespace vireo::virtio;
    constexpr std::uint64_t kRamSize = 64 * 1024;
    constexpr std::uint16_t kQueueSize = 16;
    constexpr std::uint64_t kDesc = 0;
    constexpr std::uint64_t kAvail = kDesc + 16 * kQueueSize;
    constexpr std::uint64_t kUsed = 0x1000;
    if (size < 2) {
        return 0;
    }
    static GuestMemory* mem = [] {
        std::array<MemoryRegionSpec, 1> spec{{{GuestAddress{0}, kRamSize}}};
        return new GuestMemory(std::move(GuestMemory::create(spec).value()));
    }();
    std::array<std::uint8_t, 4096> zero{};
    for (std::uint64_t a = 0; a < kRamSize; a += zero.size()) {
        static_cast<void>(mem->write(GuestAddress{a}, zero));
    }
    // The input covers the descriptor table and available ring, then (skipping the used ring at
    // 0x1000) the rest of RAM where buffers point.
    const std::size_t first = std::min<std::size_t>(size, kUsed);
    static_cast<void>(mem->write(GuestAddress{0}, std::span(data, first)));
    if (size > first) {
        const std::size_t rest = std::min<std::size_t>(size - first, kRamSize - 0x2000);
        static_cast<void>(mem->write(GuestAddress{0x2000}, std::span(data + first, rest)));
    }
    VirtQueue q(kQueueSize);
    q.config().size = kQueueSize;
    q.config().desc_table = kDesc;
    q.config().avail_ring = kAvail;
    q.config().used_ring = kUsed;
    if (!q.activate(*mem, (data[0] & 1) != 0, (data[0] & 2) != 0)) {
        return 0;
    }
    DescriptorChain chain;
    chain.buffers.reserve(kQueueSize);
    BlkRequest request;
    request.data.reserve(kQueueSize);
    for (int round = 0; round < 2 * kQueueSize; ++round) {
        auto popped = q.pop(*mem, chain);
        if (!popped || !*popped) {
            break;
        }
        if (!parse_blk_request(*mem, chain, request)) {
            break;
        }
        const std::uint8_t status = validate_blk_request(request, 64, (data[1] & 1) != 0, 32);
        std::uint64_t total = 0;
        for (const auto& v : request.data) {
            if (status == kBlkStatusOk && request.type == kBlkTypeIn) {
                std::memset(v.iov_base, 0x5a, v.iov_len);
            }
            total += v.iov_len;
        }
        if (total != request.data_len && request.type != kBlkTypeDiscard &&
            request.type != kBlkTypeWriteZeroes) {
            __builtin_trap();  // the iovecs must cover exactly the payload
        }
        if (!mem->write_obj(request.status, status)) {
            __builtin_trap();  // the status byte was found inside a checked buffer
        }
        if (!q.add_used(*mem, chain.head, 1)) {
            break;
        }
    }
    return 0;
}
