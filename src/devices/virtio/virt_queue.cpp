#include "devices/virtio/virt_queue.h"

#include <atomic>

#include <fmt/format.h>

#include "devices/virtio/virtio_spec.h"

namespace vireo::virtio {

namespace {

// §2.7.6: struct virtq_avail { le16 flags; le16 idx; le16 ring[size]; le16 used_event; }
constexpr std::uint64_t kAvailIdx = 2;
constexpr std::uint64_t kAvailRing = 4;
// §2.7.8: struct virtq_used { le16 flags; le16 idx; struct { le32 id; le32 len; } ring[size];
// le16 avail_event; }
constexpr std::uint64_t kUsedIdx = 2;
constexpr std::uint64_t kUsedRing = 4;
constexpr std::uint64_t kUsedElemSize = 8;

bool is_power_of_two(std::uint32_t v) {
    return v != 0 && (v & (v - 1)) == 0;
}

// §2.7.7.2 vring_need_event: notify when new_idx has passed event_idx since old_idx.
bool need_event(std::uint16_t event_idx, std::uint16_t new_idx, std::uint16_t old_idx) {
    return static_cast<std::uint16_t>(new_idx - event_idx - 1) <
           static_cast<std::uint16_t>(new_idx - old_idx);
}

}  // namespace

VirtQueue::VirtQueue(std::uint16_t max_size) : m_max_size(max_size) {
    reset();
}

void VirtQueue::reset() {
    m_state = QueueState{};
    m_driver = QueueConfig{};
    m_driver.size = m_max_size;  // §4.1.4.3: queue_size reads the maximum after reset
    m_driver.msix_vector = kNoVector;
    m_state.config = m_driver;
    m_active = false;
}

QueueState VirtQueue::state() const {
    QueueState s = m_state;
    if (!m_active) {
        s.config = m_driver;
    }
    return s;
}

void VirtQueue::restore(const QueueState& state) {
    m_state = state;
    m_driver = state.config;
    m_active = false;
}

Result<void> VirtQueue::activate(const GuestMemory& mem, bool event_idx, bool indirect) {
    // Validated on a copy: the transport may be handed a new value at any moment.
    const QueueConfig c = m_driver;
    if (!is_power_of_two(c.size) || c.size > m_max_size) {
        return Error(fmt::format("queue size {} is not a power of two <= {}", c.size, m_max_size));
    }
    if (c.desc_table % 16 != 0 || c.avail_ring % 2 != 0 || c.used_ring % 4 != 0) {
        return Error("queue rings are misaligned");
    }
    const std::uint64_t n = c.size;
    if (!mem.contains_range(GuestAddress{c.desc_table}, 16 * n) ||
        !mem.contains_range(GuestAddress{c.avail_ring}, kAvailRing + 2 * n + 2) ||
        !mem.contains_range(GuestAddress{c.used_ring}, kUsedRing + kUsedElemSize * n + 2)) {
        return Error("queue rings are outside guest RAM");
    }
    m_state.config = c;
    m_event_idx = event_idx;
    m_indirect = indirect;
    m_active = true;
    return ok();
}

Result<std::uint16_t> VirtQueue::pending(const GuestMemory& mem) const {
    if (!m_active) {
        return Error("queue is not active");
    }
    auto idx = mem.read_obj<std::uint16_t>(GuestAddress{m_state.config.avail_ring + kAvailIdx});
    if (!idx) {
        return idx.error();
    }
    const auto count = static_cast<std::uint16_t>(*idx - m_state.next_avail);
    if (count > m_state.config.size) {
        auto used = mem.read_obj<std::uint16_t>(GuestAddress{m_state.config.used_ring + kUsedIdx});
        return Error(fmt::format(
            "driver made {} buffers available in a queue of {} (avail idx {}, next avail {}, "
            "next used {}, used idx {})",
            count, m_state.config.size, *idx, m_state.next_avail, m_state.next_used,
            used ? *used : 0));
    }
    return count;
}

Result<void> VirtQueue::read_desc(const GuestMemory& mem, std::uint64_t table, std::uint32_t count,
                                  std::uint16_t index, Descriptor& out) const {
    if (index >= count) {
        return Error(fmt::format("descriptor index {} out of range ({})", index, count));
    }
    auto d = mem.read_obj<Descriptor>(GuestAddress{table + std::uint64_t{index} * 16});
    if (!d) {
        return d.error();
    }
    out = *d;
    return ok();
}

Result<void> VirtQueue::append(const GuestMemory& mem, const Descriptor& d,
                               DescriptorChain& out) const {
    if (out.buffers.size() >= m_state.config.size) {
        return Error("descriptor chain longer than the queue (a loop?)");
    }
    const bool writable = (d.flags & kDescWrite) != 0;
    if (!writable && out.writable_bytes > 0) {
        return Error("device-readable descriptor after a device-writable one");
    }
    if (!mem.contains_range(GuestAddress{d.addr}, d.len)) {
        return Error(
            fmt::format("descriptor buffer {:#x}+{:#x} is outside guest RAM", d.addr, d.len));
    }
    out.buffers.push_back(ChainBuffer{GuestAddress{d.addr}, d.len, writable});
    (writable ? out.writable_bytes : out.readable_bytes) += d.len;
    return ok();
}

Result<bool> VirtQueue::pop(const GuestMemory& mem, DescriptorChain& out) {
    if (!m_active) {
        return Error("queue is not active");
    }
    auto avail = pending(mem);
    if (!avail) {
        return avail.error();
    }
    if (*avail == 0) {
        return false;
    }
    // The ring entry must be read after the index that published it (§2.7.13.3 barrier).
    std::atomic_thread_fence(std::memory_order_acquire);
    const auto& c = m_state.config;
    const std::uint64_t slot = m_state.next_avail % c.size;
    auto head = mem.read_obj<std::uint16_t>(GuestAddress{c.avail_ring + kAvailRing + 2 * slot});
    if (!head) {
        return head.error();
    }
    out.head = *head;
    out.buffers.clear();
    out.readable_bytes = 0;
    out.writable_bytes = 0;

    Descriptor d{};
    if (auto r = read_desc(mem, c.desc_table, c.size, *head, d); !r) {
        return r.error();
    }
    if ((d.flags & kDescIndirect) != 0) {
        // §2.7.5.3: an indirect table replaces the whole chain; NEXT must not be set with it
        // and indirect tables do not nest.
        if (!m_indirect) {
            return Error("indirect descriptor without VIRTIO_F_INDIRECT_DESC");
        }
        if ((d.flags & kDescNext) != 0) {
            return Error("descriptor has both INDIRECT and NEXT");
        }
        if (d.len == 0 || d.len % 16 != 0 || d.len / 16 > c.size) {
            return Error(fmt::format("indirect table of {} bytes is invalid", d.len));
        }
        if (!mem.contains_range(GuestAddress{d.addr}, d.len)) {
            return Error("indirect table is outside guest RAM");
        }
        const std::uint64_t table = d.addr;
        const auto count = d.len / 16;
        std::uint16_t index = 0;
        for (;;) {
            Descriptor e{};
            if (auto r = read_desc(mem, table, count, index, e); !r) {
                return r.error();
            }
            if ((e.flags & kDescIndirect) != 0) {
                return Error("nested indirect descriptor");
            }
            if (auto r = append(mem, e, out); !r) {
                return r.error();
            }
            if ((e.flags & kDescNext) == 0) {
                break;
            }
            index = e.next;
        }
    } else {
        for (;;) {
            if (auto r = append(mem, d, out); !r) {
                return r.error();
            }
            if ((d.flags & kDescNext) == 0) {
                break;
            }
            if (auto r = read_desc(mem, c.desc_table, c.size, d.next, d); !r) {
                return r.error();
            }
            if ((d.flags & kDescIndirect) != 0) {
                return Error("indirect descriptor inside a chain");
            }
        }
    }
    ++m_state.next_avail;
    return true;
}

void VirtQueue::undo_pop() {
    if (!m_active) {
        return;
    }
    --m_state.next_avail;
}

Result<void> VirtQueue::add_used(GuestMemory& mem, std::uint16_t head, std::uint32_t written) {
    if (!m_active) {
        return Error("queue is not active");
    }
    const auto& c = m_state.config;
    if (head >= c.size) {
        return Error(fmt::format("used id {} out of range", head));
    }
    const std::uint64_t slot = m_state.next_used % c.size;
    const std::uint32_t elem[2] = {head, written};
    if (auto r = mem.write_obj(GuestAddress{c.used_ring + kUsedRing + kUsedElemSize * slot}, elem);
        !r) {
        return r.error();
    }
    ++m_state.next_used;
    // The element must be visible before the index that publishes it.
    std::atomic_thread_fence(std::memory_order_release);
    return mem.write_obj(GuestAddress{c.used_ring + kUsedIdx}, m_state.next_used);
}

bool VirtQueue::needs_notification(const GuestMemory& mem) {
    // The used index write must be visible before the driver's suppression fields are read
    // (§2.7.7: otherwise both sides can miss each other's update).
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (!m_active) {
        return false;
    }
    const auto& c = m_state.config;
    if (!m_event_idx) {
        auto flags = mem.read_obj<std::uint16_t>(GuestAddress{c.avail_ring});
        return !flags || (*flags & kAvailNoInterrupt) == 0;
    }
    auto used_event =
        mem.read_obj<std::uint16_t>(GuestAddress{c.avail_ring + kAvailRing + 2ULL * c.size});
    const std::uint16_t old_used = m_state.signalled_used;
    const bool valid = m_state.signalled_used_valid;
    m_state.signalled_used = m_state.next_used;
    m_state.signalled_used_valid = true;
    if (!used_event || !valid) {
        return true;
    }
    return need_event(*used_event, m_state.next_used, old_used);
}

bool VirtQueue::enable_notification(GuestMemory& mem) {
    if (!m_active) {
        return false;
    }
    const auto& c = m_state.config;
    if (m_event_idx) {
        static_cast<void>(mem.write_obj(
            GuestAddress{c.used_ring + kUsedRing + kUsedElemSize * c.size}, m_state.next_avail));
    }
    std::atomic_thread_fence(std::memory_order_seq_cst);
    auto count = pending(mem);
    return !count || *count > 0;
}

}  // namespace vireo::virtio
