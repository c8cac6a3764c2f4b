// MSI-X (PCI Local Bus 3.0 §6.8.2): a table of vectors in a BAR, each {Message Address,
// Message Upper Address, Message Data, Vector Control}, a Pending Bit Array, and a capability
// whose Message Control word holds the table size, Function Mask (bit 14) and MSI-X Enable
// (bit 15). Each vector has an MsiRoute (created up front from the injected MsiController);
// notify() triggers it when MSI-X is enabled and neither the function nor the vector is masked,
// else latches the vector's pending bit, which is delivered (and cleared) once unmasked.
//
// The route follows the table lazily: a written entry is marked dirty and handed to
// MsiRoute::set_message() when the vector is unmasked (or at the latest on its next delivery),
// so Linux's mask / write address / write data / unmask sequence costs one route update.
//
// Hostile guests (DESIGN.md §3): table and PBA accesses must be aligned DWORDs or QWORDs inside
// the structure (§6.8.2: other accesses are undefined); anything else reads all-ones, is ignored
// when written, and is counted.
//
// Thread-safety: one mutex guards the table; notify() runs on device threads while vCPU threads
// access the table. Lock order: the PciConfigSpace lock is never held while taking this one.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <vector>

#include "base/result.h"
#include "base/state_archive.h"
#include "devices/pci/pci_config_space.h"
#include "irq/msi.h"

namespace vireo {

// Where the table and PBA live: BAR index and byte offset (QWORD aligned, §6.8.2.4-5).
struct MsixLayout {
    int table_bar = 0;
    std::uint32_t table_offset = 0;
    int pba_bar = 0;
    std::uint32_t pba_offset = 0;
};

// One table entry as the guest programmed it (§6.8.2.6-9).
struct MsixEntry {
    std::uint32_t address_lo = 0;
    std::uint32_t address_hi = 0;
    std::uint32_t data = 0;
    std::uint32_t vector_control = 1;  // bit 0 Mask Bit, set at reset

    bool operator==(const MsixEntry&) const = default;
};

struct MsixTableState {
    std::vector<MsixEntry> entries;
    std::vector<std::uint64_t> pending;  // the PBA, one bit per vector
    bool enabled = false;
    bool function_masked = false;
};

enum class MsixDelivery {
    Delivered,  // the route was triggered
    Pending,    // masked: the pending bit is set
    Disabled,   // MSI-X is off; the device may use INTx instead
    NoVector,   // no such vector (e.g. virtio's VIRTIO_MSI_NO_VECTOR)
    RouteError  // the route could not be updated to the programmed message
};

class MsixTable {
public:
    static constexpr std::size_t kMaxVectors = 2048;  // Table Size is 11 bits (N - 1)
    static constexpr std::size_t kEntrySize = 16;
    static constexpr std::size_t kCapabilityBodySize = 10;  // after the ID and next pointer

    // Creates `vectors` routes (1 <= vectors <= 2048).
    static Result<std::unique_ptr<MsixTable>> create(MsiController& controller,
                                                     std::size_t vectors);

    // Adds the MSI-X capability to `config` and makes Function Mask and Enable writable. The
    // BARs named in `layout` must already be declared and large enough, and the table and PBA must
    // not overlap. Remembers `config` (which must outlive this table) for config_written().
    Result<std::uint16_t> attach(PciConfigSpace& config, const MsixLayout& layout);
    // Call after every guest config write (PciDevice::config_write): picks up Enable and
    // Function Mask when the write touched Message Control, delivering what became unmasked.
    void config_written(std::uint16_t offset, std::size_t size);

    // BAR accesses from PciDevice::bar_read/bar_write: true when [offset, offset + size) of `bar`
    // touches the table or the PBA (then the access was handled), false when it is elsewhere.
    bool bar_read(int bar, std::uint64_t offset, std::span<std::uint8_t> data);
    bool bar_write(int bar, std::uint64_t offset, std::span<const std::uint8_t> data);

    // Offsets relative to the start of the table / PBA.
    void table_read(std::uint64_t offset, std::span<std::uint8_t> data);
    void table_write(std::uint64_t offset, std::span<const std::uint8_t> data);
    void pba_read(std::uint64_t offset, std::span<std::uint8_t> data);

    // Raises `vector` (device threads).
    MsixDelivery notify(std::size_t vector);

    std::size_t vectors() const { return m_entries.size(); }
    std::size_t table_size_bytes() const { return m_entries.size() * kEntrySize; }
    std::size_t pba_size_bytes() const { return m_pending.size() * 8; }
    bool enabled() const;
    bool function_masked() const;
    MsixEntry entry(std::size_t vector) const;  // a default entry when out of range
    bool pending(std::size_t vector) const;
    // Guest accesses refused as malformed, route updates that failed.
    std::uint64_t bad_accesses() const;
    std::uint64_t route_errors() const;

    MsixTableState save_state() const;
    // Routes are re-pointed lazily, as after a guest write. Fails on a state of another size.
    Result<void> restore_state(const MsixTableState& state);

private:
    explicit MsixTable(std::vector<std::unique_ptr<MsiRoute>> routes);

    // Callers of the helpers below hold m_mutex.
    bool deliverable(std::size_t vector) const;  // enabled, function and vector unmasked
    bool commit(std::size_t vector);             // pushes a dirty entry to its route
    void deliver(std::size_t vector);            // commit + trigger (or count the failure)
    void deliver_pending();                      // everything pending that is now unmasked
    bool pending_locked(std::size_t vector) const;
    void set_pending(std::size_t vector, bool on);
    void write_dword(std::size_t vector, std::size_t field, std::uint32_t value);
    std::uint32_t read_dword(std::size_t vector, std::size_t field) const;

    mutable std::mutex m_mutex;
    std::vector<std::unique_ptr<MsiRoute>> m_routes;
    std::vector<MsixEntry> m_entries;
    std::vector<bool> m_dirty;  // entry changed since its route was last set
    std::vector<std::uint64_t> m_pending;
    bool m_enabled = false;
    bool m_function_masked = false;
    std::uint64_t m_bad_accesses = 0;
    std::uint64_t m_route_errors = 0;

    PciConfigSpace* m_config = nullptr;  // set by attach()
    std::uint16_t m_capability = 0;
    MsixLayout m_layout;
};

template <typename Ar>
void persist(Ar& ar, MsixEntry& e) {
    ar(e.address_lo, e.address_hi, e.data, e.vector_control);
}

template <typename Ar>
void persist(Ar& ar, MsixTableState& s) {
    ar.vec(s.entries, MsixTable::kMaxVectors);
    ar.vec(s.pending, MsixTable::kMaxVectors / 64);
    ar(s.enabled, s.function_masked);
}

}  // namespace vireo
