// The header in front of every frame exchanged with a tap opened with IFF_VNET_HDR and
// TUNSETVNETHDRSZ 12: struct virtio_net_hdr with num_buffers (Virtio 1.2 §5.1.6), the layout a
// virtio 1.x driver always uses. Fields are little-endian (virtio 1.x, and the tap's default on
// a little-endian host).
#pragma once

#include <cstddef>
#include <cstdint>

namespace vireo {

struct VirtioNetHeader {
    // §5.1.6 flags
    static constexpr std::uint8_t kNeedsCsum = 1;  // checksum from csum_start, at csum_offset
    static constexpr std::uint8_t kDataValid = 2;  // receive: checksum already verified
    // §5.1.6 gso_type
    static constexpr std::uint8_t kGsoNone = 0;
    static constexpr std::uint8_t kGsoTcpV4 = 1;
    static constexpr std::uint8_t kGsoUdp = 3;
    static constexpr std::uint8_t kGsoTcpV6 = 4;
    static constexpr std::uint8_t kGsoEcn = 0x80;

    std::uint8_t flags = 0;
    std::uint8_t gso_type = kGsoNone;
    std::uint16_t hdr_len = 0;
    std::uint16_t gso_size = 0;
    std::uint16_t csum_start = 0;
    std::uint16_t csum_offset = 0;
    std::uint16_t num_buffers = 0;  // receive with VIRTIO_NET_F_MRG_RXBUF; the tap writes 0
};
static_assert(sizeof(VirtioNetHeader) == 12);
static_assert(offsetof(VirtioNetHeader, csum_start) == 6);
static_assert(offsetof(VirtioNetHeader, num_buffers) == 10);

}  // namespace vireo
