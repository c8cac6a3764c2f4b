#include "devices/virtio/virtio_blk_request.h"

#include <algorithm>
#include <array>
#include <cstring>

namespace vireo::virtio {

namespace {

struct BlkHeader {
    std::uint32_t type;
    std::uint32_t reserved;
    std::uint64_t sector;
};
static_assert(sizeof(BlkHeader) == 16);

// Copies the first out.size() readable bytes of the chain (skipping `skip`); false if short.
bool copy_readable(const GuestMemory& mem, const DescriptorChain& chain, std::uint64_t skip,
                   std::span<std::uint8_t> out) {
    std::size_t done = 0;
    for (const auto& b : chain.buffers) {
        if (b.writable || done == out.size()) {
            break;
        }
        if (skip >= b.len) {
            skip -= b.len;
            continue;
        }
        const auto n = std::min<std::uint64_t>(b.len - skip, out.size() - done);
        if (!mem.read(GuestAddress{b.addr.value + skip}, out.subspan(done, n))) {
            return false;
        }
        done += n;
        skip = 0;
    }
    return done == out.size();
}

// Appends the slices of [skip, skip + len) of the readable (or writable) stream to out.data.
Result<void> collect(const GuestMemory& mem, const DescriptorChain& chain, bool writable,
                     std::uint64_t skip, std::uint64_t len, BlkRequest& out) {
    for (const auto& b : chain.buffers) {
        if (b.writable != writable || len == 0) {
            continue;
        }
        if (skip >= b.len) {
            skip -= b.len;
            continue;
        }
        const auto n = std::min<std::uint64_t>(b.len - skip, len);
        auto s = mem.slice(GuestAddress{b.addr.value + skip}, n);
        if (!s) {
            return s.error();
        }
        if (n > 0) {
            out.data.push_back(iovec{s->data(), n});
        }
        out.data_len += n;
        len -= n;
        skip = 0;
    }
    return ok();
}

}  // namespace

Result<void> parse_blk_request(const GuestMemory& mem, const DescriptorChain& chain,
                               BlkRequest& out) {
    out.data.clear();
    out.data_len = 0;
    out.segment = {};
    if (chain.writable_bytes == 0) {
        return Error("virtio-blk request without a status byte");
    }
    std::array<std::uint8_t, sizeof(BlkHeader)> raw{};
    if (chain.readable_bytes < raw.size() || !copy_readable(mem, chain, 0, raw)) {
        return Error("virtio-blk request header is shorter than 16 bytes");
    }
    BlkHeader h{};
    std::memcpy(&h, raw.data(), sizeof(h));
    out.type = h.type;
    out.sector = h.sector;
    // The status is the last writable byte.
    std::uint64_t remaining = chain.writable_bytes - 1;
    for (const auto& b : chain.buffers) {
        if (!b.writable) {
            continue;
        }
        if (remaining < b.len) {
            out.status = GuestAddress{b.addr.value + remaining};
            break;
        }
        remaining -= b.len;
    }
    const std::uint64_t readable_payload = chain.readable_bytes - sizeof(BlkHeader);
    const std::uint64_t writable_payload = chain.writable_bytes - 1;
    switch (h.type) {
        case kBlkTypeIn:
        case kBlkTypeGetId:
            return collect(mem, chain, true, 0, writable_payload, out);
        case kBlkTypeOut:
            return collect(mem, chain, false, sizeof(BlkHeader), readable_payload, out);
        case kBlkTypeDiscard:
        case kBlkTypeWriteZeroes: {
            // Only the first segment is read; validate_blk_request() rejects more than one.
            out.data_len = readable_payload;
            if (readable_payload >= sizeof(BlkDiscardSegment)) {
                std::array<std::uint8_t, sizeof(BlkDiscardSegment)> seg{};
                if (copy_readable(mem, chain, sizeof(BlkHeader), seg)) {
                    std::memcpy(&out.segment, seg.data(), sizeof(out.segment));
                }
            }
            return ok();
        }
        default:
            return ok();
    }
}

std::uint8_t validate_blk_request(const BlkRequest& r, std::uint64_t capacity_sectors,
                                  bool read_only, std::uint32_t max_discard_sectors) {
    auto in_range = [&](std::uint64_t sector, std::uint64_t sectors) {
        return sector <= capacity_sectors && sectors <= capacity_sectors - sector;
    };
    switch (r.type) {
        case kBlkTypeIn:
        case kBlkTypeOut:
            if (r.type == kBlkTypeOut && read_only) {
                return kBlkStatusIoErr;
            }
            if (r.data_len % kSectorSize != 0 || !in_range(r.sector, r.data_len / kSectorSize)) {
                return kBlkStatusIoErr;
            }
            return kBlkStatusOk;
        case kBlkTypeFlush:
        case kBlkTypeGetId:
            return kBlkStatusOk;
        case kBlkTypeDiscard:
        case kBlkTypeWriteZeroes:
            if (read_only) {
                return kBlkStatusIoErr;
            }
            // §5.2.6.1: exactly one segment (max_*_seg = 1), unknown flags are UNSUPP.
            if (r.data_len != sizeof(BlkDiscardSegment)) {
                return kBlkStatusUnsupported;
            }
            if ((r.segment.flags & ~1U) != 0 ||
                (r.type == kBlkTypeDiscard && r.segment.flags != 0)) {
                return kBlkStatusUnsupported;
            }
            if (r.segment.num_sectors > max_discard_sectors ||
                !in_range(r.segment.sector, r.segment.num_sectors)) {
                return kBlkStatusIoErr;
            }
            return kBlkStatusOk;
        default:
            return kBlkStatusUnsupported;
    }
}

}  // namespace vireo::virtio
