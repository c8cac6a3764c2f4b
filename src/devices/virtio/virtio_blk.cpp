#include "devices/virtio/virtio_blk.h"

#include "base/state_archive.h"

#include <poll.h>
#include <sys/epoll.h>

#include <algorithm>
#include <cstddef>
#include <cstring>

#include <fmt/format.h>

#include "devices/virtio/virtio_spec.h"

namespace vireo::virtio {

namespace {

// §5.2.3 feature bits.
constexpr unsigned kFeatureSegMax = 2;
constexpr unsigned kFeatureRo = 5;
constexpr unsigned kFeatureBlkSize = 6;
constexpr unsigned kFeatureFlush = 9;
constexpr unsigned kFeatureMq = 12;
constexpr unsigned kFeatureDiscard = 13;
constexpr unsigned kFeatureWriteZeroes = 14;

// §5.2.4 struct virtio_blk_config, up to write_zeroes_may_unmap and its padding.
struct BlkConfig {
    std::uint64_t capacity;
    std::uint32_t size_max;
    std::uint32_t seg_max;
    std::uint16_t cylinders;
    std::uint8_t heads;
    std::uint8_t sectors;
    std::uint32_t blk_size;
    std::uint8_t physical_block_exp;
    std::uint8_t alignment_offset;
    std::uint16_t min_io_size;
    std::uint32_t opt_io_size;
    std::uint8_t writeback;
    std::uint8_t unused0;
    std::uint16_t num_queues;
    std::uint32_t max_discard_sectors;
    std::uint32_t max_discard_seg;
    std::uint32_t discard_sector_alignment;
    std::uint32_t max_write_zeroes_sectors;
    std::uint32_t max_write_zeroes_seg;
    std::uint8_t write_zeroes_may_unmap;
    std::uint8_t unused1[3];
};
// The struct is 60 bytes on the wire; the compiler pads sizeof to 64 (capacity is 8-aligned).
constexpr std::uint32_t kBlkConfigSize = 60;
static_assert(offsetof(BlkConfig, write_zeroes_may_unmap) == 56 &&
              sizeof(BlkConfig) >= kBlkConfigSize);

constexpr std::uint16_t kQueueSize = kMaxQueueSize;
// In-flight requests; each slot holds up to a whole chain of iovecs.
constexpr std::uint32_t kSlots = 128;
// Largest discard/write-zeroes range per request: 1 GiB, so one request cannot tie up the
// backend for long.
constexpr std::uint32_t kMaxDiscardSectors = (1U << 30) / kSectorSize;

}  // namespace

Result<std::unique_ptr<VirtioBlk>> VirtioBlk::create(std::unique_ptr<BlockFile> file,
                                                     std::string serial, std::string label,
                                                     std::uint16_t queues, bool flush) {
    if (queues == 0 || queues > kMaxQueues) {
        return Error(fmt::format("virtio-blk {}: {} queues (1..{})", label, queues, kMaxQueues));
    }
    if (serial.size() > kBlkIdBytes) {
        return Error(fmt::format("disk serial '{}' is longer than {} bytes", serial, kBlkIdBytes));
    }
    if (file->queue_depth() < kSlots) {
        return Error(
            fmt::format("block backend queue depth {} is below {}", file->queue_depth(), kSlots));
    }
    return std::unique_ptr<VirtioBlk>(
        new VirtioBlk(std::move(file), std::move(serial), std::move(label), queues, flush));
}

VirtioBlk::VirtioBlk(std::unique_ptr<BlockFile> file, std::string serial, std::string label,
                     std::uint16_t queues, bool flush)
    : m_file(std::move(file)),
      m_capacity(m_file->size()),
      m_read_only(m_file->read_only()),
      m_flush(flush),
      m_serial(std::move(serial)),
      m_label(std::move(label)),
      m_queue_sizes(queues, kQueueSize),
      m_slots(kSlots) {
    for (auto& s : m_slots) {
        s.request.data.reserve(kQueueSize);
    }
    m_free.reserve(kSlots);
    for (std::uint32_t i = kSlots; i-- > 0;) {
        m_free.push_back(i);
    }
    m_chain.buffers.reserve(kQueueSize);
}

VirtioBlk::~VirtioBlk() {
    reset();
}

std::uint16_t VirtioBlk::device_type() const {
    return kDeviceBlock;
}

std::uint64_t VirtioBlk::device_features() const {
    std::uint64_t f = feature(kFeatureSegMax) | feature(kFeatureBlkSize);
    if (m_flush) {
        f |= feature(kFeatureFlush);
    }
    if (m_file->read_only()) {
        f |= feature(kFeatureRo);
    } else {
        f |= feature(kFeatureDiscard) | feature(kFeatureWriteZeroes);
    }
    if (m_queue_sizes.size() > 1) {
        f |= feature(kFeatureMq);
    }
    return f;
}

std::span<const std::uint16_t> VirtioBlk::queue_max_sizes() const {
    return m_queue_sizes;
}

std::uint32_t VirtioBlk::config_size() const {
    return kBlkConfigSize;
}

void VirtioBlk::read_config(std::uint64_t offset, std::span<std::uint8_t> data) {
    BlkConfig c{};
    c.capacity = capacity_sectors();
    c.seg_max = kQueueSize - 2;  // header and status take two descriptors
    c.blk_size = kSectorSize;
    c.num_queues = static_cast<std::uint16_t>(m_queue_sizes.size());
    c.max_discard_sectors = kMaxDiscardSectors;
    c.max_discard_seg = 1;
    c.discard_sector_alignment = 4096 / kSectorSize;
    c.max_write_zeroes_sectors = kMaxDiscardSectors;
    c.max_write_zeroes_seg = 1;
    c.write_zeroes_may_unmap = 1;
    std::array<std::uint8_t, sizeof(BlkConfig)> bytes{};
    std::memcpy(bytes.data(), &c, sizeof(c));
    copy_config(bytes, offset, data);
}

Result<void> VirtioBlk::on_activate(EventLoop& loop) {
    m_throttled = 0;
    m_limited = 0;
    m_used_mask = 0;
    if (auto r = watch_rate_limiter(loop, m_limiter.get(),
                                    [this] {
                                        const std::uint32_t limited = m_limited;
                                        m_limited = 0;
                                        for (std::size_t i = 0; i < queue_count(); ++i) {
                                            if ((limited >> i) & 1U) {
                                                process_queue(i);
                                            }
                                        }
                                    });
        !r) {
        return r;
    }
    return loop.add(m_file->completion_fd(), EPOLLIN, [this](std::uint32_t) { on_completions(); });
}

void VirtioBlk::process_queue(std::size_t index) {
    if (failed() || index >= queue_count()) {
        return;
    }
    serve(index);
    // A submit error leaves the requests queued in the backend; they go out with the next
    // submit or reap.
    static_cast<void>(m_file->submit());
    // Requests on a fast backend often complete inside submit(): answer them now, which saves
    // a trip through the event loop before the guest hears back.
    on_completions();
}

void VirtioBlk::serve(std::size_t index) {
    m_throttled &= ~(1U << index);
    if ((m_limited >> index) & 1U) {
        return;  // the limiter's timer serves this queue again
    }
    for (;;) {
        if (m_free.empty() || m_file->free_slots() == 0) {
            m_throttled |= 1U << index;  // on_completions() comes back here
            break;
        }
        if (!next_chain(index, m_chain)) {
            return;  // empty, or broken (fail() was called)
        }
        const std::uint32_t index_slot = m_free.back();
        m_free.pop_back();
        Slot& slot = m_slots[index_slot];
        slot.queue = static_cast<std::uint16_t>(index);
        slot.head = m_chain.head;
        if (auto r = parse_blk_request(memory(), m_chain, slot.request); !r) {
            m_free.push_back(index_slot);
            fail(fmt::format("queue {}: {}", index, r.error().message()));
            return;
        }
        if (m_limiter) {
            const auto type = slot.request.type;
            const std::uint64_t bytes =
                type == kBlkTypeIn || type == kBlkTypeOut ? slot.request.data_len : 0;
            if (!m_limiter->consume(bytes, 1)) {
                // Throttled: the request goes back on the ring, untouched, until the timer.
                m_free.push_back(index_slot);
                queue(index).undo_pop();
                m_limited |= 1U << index;
                return;
            }
        }
        counters().requests.fetch_add(1, std::memory_order_relaxed);
        const std::uint8_t status = start(index_slot);
        if (status == 0xff) {
            continue;
        }
        const std::uint32_t written = status == kBlkStatusOk && slot.request.type == kBlkTypeGetId
                                          ? static_cast<std::uint32_t>(std::min<std::uint64_t>(
                                                slot.request.data_len, kBlkIdBytes))
                                          : 0;
        complete(index_slot, status, written + 1);
    }
}

// Returns 0xff when the request went to the backend, else the status to answer with.
std::uint8_t VirtioBlk::start(std::uint32_t index) {
    Slot& slot = m_slots[index];
    const BlkRequest& r = slot.request;
    const std::uint8_t status =
        validate_blk_request(r, capacity_sectors(), m_file->read_only(), kMaxDiscardSectors);
    if (status != kBlkStatusOk) {
        counters().errors.fetch_add(1, std::memory_order_relaxed);
        return status;
    }
    const std::uint64_t offset = r.sector * kSectorSize;
    Result<void> sent = ok();
    switch (r.type) {
        case kBlkTypeIn:
            sent = m_file->read(offset, r.data, index);
            break;
        case kBlkTypeOut:
            sent = m_file->write(offset, r.data, index);
            break;
        case kBlkTypeFlush:
            sent = m_file->flush(index);
            break;
        case kBlkTypeDiscard:
            sent = m_file->discard(r.segment.sector * kSectorSize,
                                   std::uint64_t{r.segment.num_sectors} * kSectorSize, index);
            break;
        case kBlkTypeWriteZeroes:
            sent = m_file->write_zeroes(r.segment.sector * kSectorSize,
                                        std::uint64_t{r.segment.num_sectors} * kSectorSize, index);
            break;
        case kBlkTypeGetId: {
            // §5.2.6: up to 20 bytes, NUL-padded when shorter.
            std::array<char, kBlkIdBytes> id{};
            std::copy(m_serial.begin(), m_serial.end(), id.begin());
            std::size_t done = 0;
            for (const auto& v : r.data) {
                const std::size_t n = std::min(v.iov_len, id.size() - done);
                std::memcpy(v.iov_base, id.data() + done, n);
                done += n;
            }
            return kBlkStatusOk;
        }
        default:
            return kBlkStatusUnsupported;
    }
    if (!sent) {
        counters().errors.fetch_add(1, std::memory_order_relaxed);
        return kBlkStatusIoErr;
    }
    return 0xff;
}

void VirtioBlk::complete(std::uint32_t index, std::uint8_t status, std::uint32_t written) {
    Slot& slot = m_slots[index];
    m_free.push_back(index);
    const auto type = slot.request.type;
    if (type == kBlkTypeIn || type == kBlkTypeGetId) {
        // IN and GET_ID filled the writable payload (io_uring or a copy) through host iovecs:
        // dirty from now, not from the pop (GuestMemory::note_write).
        for (const auto& v : slot.request.data) {
            memory().note_write_at(v.iov_base, v.iov_len);
        }
    }
    if (!memory().write_obj(slot.request.status, status)) {
        fail("status byte is outside guest RAM");
        return;
    }
    if (auto r = queue(slot.queue).add_used(memory(), slot.head, written); !r) {
        fail(r.error().message());
        return;
    }
    m_used_mask |= 1U << slot.queue;
}

void VirtioBlk::on_completions() {
    m_file->reap([this](std::uint64_t tag, std::int64_t result) {
        if (tag >= m_slots.size()) {
            return;
        }
        const auto index = static_cast<std::uint32_t>(tag);
        if (failed()) {
            m_free.push_back(index);  // the queue is dead: free the slot, answer nothing
            return;
        }
        const BlkRequest& r = m_slots[index].request;
        std::uint32_t written = 1;
        std::uint8_t status = kBlkStatusOk;
        if (result < 0) {
            status = kBlkStatusIoErr;
            counters().errors.fetch_add(1, std::memory_order_relaxed);
        } else if (r.type == kBlkTypeIn) {
            written += static_cast<std::uint32_t>(r.data_len);
            counters().bytes_read.fetch_add(r.data_len, std::memory_order_relaxed);
        } else if (r.type == kBlkTypeOut) {
            counters().bytes_written.fetch_add(r.data_len, std::memory_order_relaxed);
        }
        complete(index, status, written);
    });
    if (failed()) {
        return;
    }
    // Queues that stopped for want of slots go on now that completions freed some.
    while (m_throttled != 0 && !m_free.empty() && m_file->free_slots() > 0) {
        const std::uint32_t pending = m_throttled;
        for (std::size_t i = 0; i < queue_count(); ++i) {
            if ((pending >> i) & 1U) {
                serve(i);
            }
        }
        static_cast<void>(m_file->submit());
        if (m_throttled == pending) {
            break;
        }
    }
    for (std::size_t i = 0; i < queue_count(); ++i) {
        if ((m_used_mask >> i) & 1U) {
            notify_used(i);
        }
    }
    m_used_mask = 0;
}

Result<void> VirtioBlk::replace_file(std::unique_ptr<BlockFile> file) {
    if (file->read_only() != m_read_only) {
        return Error(fmt::format("virtio-blk {}: the new image must be {}", m_label,
                                 m_read_only ? "read-only" : "writable"));
    }
    if (file->queue_depth() < kSlots) {
        return Error(fmt::format("virtio-blk {}: block backend queue depth {} is below {}", m_label,
                                 file->queue_depth(), kSlots));
    }
    const bool running = activated() && !paused();
    if (running) {
        pause();  // the device thread stops and in-flight requests finish on the old image
    }
    if (activated()) {
        loop().remove(m_file->completion_fd());
    }
    m_file = std::move(file);
    m_capacity = m_file->size();
    Result<void> added = ok();
    if (activated()) {
        added = loop().add(m_file->completion_fd(), EPOLLIN,
                           [this](std::uint32_t) { on_completions(); });
    }
    if (running) {
        resume();
    }
    return added;
}

void VirtioBlk::on_pause() {
    // Answer every request already handed to the backend; queued ones stay in the ring.
    while (m_free.size() < m_slots.size() && !failed()) {
        pollfd p{m_file->completion_fd(), POLLIN, 0};
        ::poll(&p, 1, 100);
        on_completions();
    }
}

void VirtioBlk::on_reset() {
    // In-flight I/O points into guest memory the driver reclaims after reset: wait for it.
    while (m_free.size() < m_slots.size()) {
        pollfd p{m_file->completion_fd(), POLLIN, 0};
        ::poll(&p, 1, 100);
        m_file->reap([this](std::uint64_t tag, std::int64_t) {
            if (tag < m_slots.size()) {
                m_free.push_back(static_cast<std::uint32_t>(tag));
            }
        });
    }
    m_throttled = 0;
    m_limited = 0;
    m_used_mask = 0;
}

namespace {

// The saved disk: the capacity the driver knows, then the limiter's buckets. An 8-byte state is
// the capacity alone (vireo before rate limiters).
struct BlkSavedState {
    std::uint64_t capacity = 0;
    std::optional<RateLimiterState> limiter;
};

template <typename Ar>
void persist(Ar& ar, BlkSavedState& s) {
    ar(s.capacity);
    ar.opt(s.limiter);
}

}  // namespace

std::vector<std::uint8_t> VirtioBlk::save_device_state() const {
    BlkSavedState s;
    s.capacity = m_capacity.load();
    if (m_limiter) {
        s.limiter = m_limiter->state();
    }
    return save_to_bytes(s);
}

Result<void> VirtioBlk::restore_device_state(std::span<const std::uint8_t> state) {
    BlkSavedState s;
    if (state.size() == sizeof(std::uint64_t)) {
        auto capacity = load_from_bytes<std::uint64_t>(state);
        if (!capacity) {
            return capacity.error().wrap("saved virtio-blk state");
        }
        s.capacity = *capacity;
    } else {
        auto loaded = load_from_bytes<BlkSavedState>(state);
        if (!loaded) {
            return loaded.error().wrap("saved virtio-blk state");
        }
        s = std::move(loaded).value();
    }
    if (s.capacity != m_capacity.load()) {
        return Error(fmt::format("the guest knew this disk as {} bytes, the image now has {} bytes",
                                 s.capacity, m_capacity.load()));
    }
    if (s.limiter && m_limiter) {
        if (auto r = m_limiter->restore(*s.limiter); !r) {
            return r.error().wrap("rate_limiter");
        }
    }
    return ok();
}

}  // namespace vireo::virtio
