// Parsing of virtio-blk requests (virtio 1.2 §5.2.6). A request is a descriptor chain carrying
// struct virtio_blk_req { le32 type; le32 reserved; le64 sector; u8 data[]; u8 status; }: the
// 16-byte header and (for writes) the data are device-readable, the data of reads and the status
// byte are device-writable. §2.6.4: the device must not assume any particular split of these
// fields over buffers, so the chain is treated as a readable byte stream and a writable one.
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <vector>

#include "base/result.h"
#include "devices/virtio/virt_queue.h"
#include "memory/guest_memory.h"

namespace vireo::virtio {

// §5.2.6 request types and status values.
inline constexpr std::uint32_t kBlkTypeIn = 0;
inline constexpr std::uint32_t kBlkTypeOut = 1;
inline constexpr std::uint32_t kBlkTypeFlush = 4;
inline constexpr std::uint32_t kBlkTypeGetId = 8;
inline constexpr std::uint32_t kBlkTypeDiscard = 11;
inline constexpr std::uint32_t kBlkTypeWriteZeroes = 13;
inline constexpr std::uint8_t kBlkStatusOk = 0;
inline constexpr std::uint8_t kBlkStatusIoErr = 1;
inline constexpr std::uint8_t kBlkStatusUnsupported = 2;

inline constexpr std::uint64_t kSectorSize = 512;
inline constexpr std::size_t kBlkIdBytes = 20;  // VIRTIO_BLK_ID_BYTES

// struct virtio_blk_discard_write_zeroes (§5.2.6).
struct BlkDiscardSegment {
    std::uint64_t sector;
    std::uint32_t num_sectors;
    std::uint32_t flags;  // bit 0: unmap (write zeroes may deallocate)
};
static_assert(sizeof(BlkDiscardSegment) == 16);

struct BlkRequest {
    std::uint32_t type = 0;
    std::uint64_t sector = 0;
    // Data buffers as host iovecs (guest memory slices): the readable payload of OUT, the
    // writable payload of IN and GET_ID. Capacity reserved once.
    std::vector<iovec> data;
    std::uint64_t data_len = 0;
    GuestAddress status;          // the last writable byte of the chain
    BlkDiscardSegment segment{};  // DISCARD / WRITE_ZEROES (one segment: max_*_seg is 1)
};

// Why a chain cannot be a request at all (no status byte to answer in): the queue is broken.
// Requests that are well-formed but not servable (unknown type, out-of-range sectors, misaligned
// lengths) parse fine and are answered with an error status by the device.
Result<void> parse_blk_request(const GuestMemory& mem, const DescriptorChain& chain,
                               BlkRequest& out);

// Checks a parsed request against a disk of `capacity_sectors` and the limits the device
// advertised; returns the status to answer with when it cannot be served, kBlkStatusOk otherwise.
std::uint8_t validate_blk_request(const BlkRequest& request, std::uint64_t capacity_sectors,
                                  bool read_only, std::uint32_t max_discard_sectors);

}  // namespace vireo::virtio
