// A split virtqueue (virtio 1.2 §2.7), device side. The guest owns the rings and may change any
// byte at any time (DESIGN.md §3): every index is checked, every descriptor is copied once and
// then validated, every buffer must lie inside guest RAM, chains are bounded by the queue size
// (§2.7.5.3.1: "A driver MUST NOT create a descriptor chain longer than the Queue Size"), which
// also catches loops. A malformed queue is an error from pop()/add_used(); the caller then marks
// the device DEVICE_NEEDS_RESET and stops using the queue.
//
// Threading and trust: the transport writes the driver's QueueConfig (config()) on vCPU threads.
// activate() validates it and takes the device's own copy; every ring access afterwards uses that
// copy, never config(), so a driver that rewrites queue_size or a ring address later (the
// transport freezes them, but a bound must not depend on that) cannot move a bound under the
// device thread. After activate() only the device thread touches the rings and positions.
#pragma once

#include <cstdint>
#include <vector>

#include "base/result.h"
#include "base/state_archive.h"
#include "memory/guest_address.h"
#include "memory/guest_memory.h"

namespace vireo::virtio {

// §2.7.5 struct virtq_desc.
struct Descriptor {
    std::uint64_t addr;
    std::uint32_t len;
    std::uint16_t flags;
    std::uint16_t next;
};
static_assert(sizeof(Descriptor) == 16);

// What the driver programs through the transport (§4.1.4.3 queue_* fields).
struct QueueConfig {
    std::uint16_t size = 0;  // 0 until the driver sets it; a power of two <= max size
    bool ready = false;
    std::uint16_t msix_vector = 0xffff;
    std::uint64_t desc_table = 0;
    std::uint64_t avail_ring = 0;  // "driver area"
    std::uint64_t used_ring = 0;   // "device area"
};

// One buffer of a chain: a guest-physical range, checked to lie inside guest RAM.
struct ChainBuffer {
    GuestAddress addr;
    std::uint32_t len = 0;
    bool writable = false;  // device-writable (VIRTQ_DESC_F_WRITE)
};

// A popped descriptor chain: readable buffers first, then writable ones (§2.7.4.2, enforced).
struct DescriptorChain {
    std::uint16_t head = 0;
    std::vector<ChainBuffer> buffers;  // capacity reserved once: no allocation per request
    std::uint64_t readable_bytes = 0;
    std::uint64_t writable_bytes = 0;
};

// Position state, part of a device's saved state.
struct QueueState {
    QueueConfig config;
    std::uint16_t next_avail = 0;
    std::uint16_t next_used = 0;
    std::uint16_t signalled_used = 0;
    bool signalled_used_valid = false;
};

class VirtQueue {
public:
    explicit VirtQueue(std::uint16_t max_size);

    std::uint16_t max_size() const { return m_max_size; }
    // What the driver programmed through the transport (not trusted until activate()).
    QueueConfig& config() { return m_driver; }
    const QueueConfig& config() const { return m_driver; }
    // The validated size the device works with: 0 unless active.
    std::uint16_t size() const { return m_active ? m_state.config.size : 0; }
    // Positions and, once active, the validated configuration; for an inactive queue, the
    // driver's programming.
    QueueState state() const;
    // The driver's programming and the ring positions, e.g. from a snapshot; activate() validates
    // them as it does a driver's.
    void restore(const QueueState& state);

    // Back to the reset values (§2.1.2: the device forgets queue configuration on reset).
    void reset();

    // Checks the driver's configuration against guest memory and the negotiated features before
    // the device starts using the queue: size a power of two <= max, rings aligned (§2.7: desc
    // 16, avail 2, used 4) and inside guest RAM; on success the device's copy is taken. Must be
    // called (and succeed) before pop(); the ring operations below fail or do nothing on an
    // inactive queue.
    Result<void> activate(const GuestMemory& mem, bool event_idx, bool indirect);
    bool active() const { return m_active; }

    // Pops the next available chain into `out`. Returns false when the ring is empty.
    Result<bool> pop(const GuestMemory& mem, DescriptorChain& out);
    // Puts a chain back at the head of the available ring (the device could not serve it yet).
    void undo_pop();
    // Returns a chain to the driver with `written` bytes written into its writable buffers.
    Result<void> add_used(GuestMemory& mem, std::uint16_t head, std::uint32_t written);
    // Whether the driver wants an interrupt for the used entries added since the last call
    // (§2.7.7.2: used_event with EVENT_IDX, else the NO_INTERRUPT flag).
    bool needs_notification(const GuestMemory& mem);
    // Asks the driver to notify on the next available buffer (EVENT_IDX: avail_event =
    // next_avail). Returns true when buffers arrived meanwhile, so the caller must pop again.
    bool enable_notification(GuestMemory& mem);

    // Number of chains the driver has made available and the device not yet popped.
    Result<std::uint16_t> pending(const GuestMemory& mem) const;

private:
    Result<void> read_desc(const GuestMemory& mem, std::uint64_t table, std::uint32_t count,
                           std::uint16_t index, Descriptor& out) const;
    Result<void> append(const GuestMemory& mem, const Descriptor& d, DescriptorChain& out) const;

    std::uint16_t m_max_size;
    QueueConfig m_driver;  // written by the transport
    QueueState m_state;    // the device's: config is the copy validated by activate()
    bool m_active = false;
    bool m_event_idx = false;
    bool m_indirect = false;
};

template <typename Ar>
void persist(Ar& ar, QueueConfig& c) {
    ar(c.size, c.ready, c.msix_vector, c.desc_table, c.avail_ring, c.used_ring);
}

template <typename Ar>
void persist(Ar& ar, QueueState& s) {
    ar(s.config, s.next_avail, s.next_used, s.signalled_used, s.signalled_used_valid);
}

}  // namespace vireo::virtio
