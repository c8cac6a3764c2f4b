// The configuration space of one PCI function (PCI Local Bus 3.0 §6.1-§6.7; PCI Express Base 4.0
// §7.2.2 for the 4 KiB extended space ECAM reaches). Offsets 0x00-0x3F hold the type 0 header,
// 0x40-0xFF the capability list, 0x100-0xFFF the extended space (nothing lives there: it reads 0).
//
// Every byte has a write mask (bits the guest may change) and a write-1-to-clear mask (bits the
// guest clears by writing 1, Status error bits). Bits in neither mask are read-only to the guest;
// the device and the firmware-style setup code change them through the methods below, which take
// no mask into account. BAR sizing (§6.2.5.1) falls out of the masks: a BAR of size S has the
// address bits below S read-only zero, so writing all-ones reads back ~(S - 1) | flags.
//
// Thread-safety: internally locked. Guest accesses come from vCPU threads (through PciRoot),
// device-side calls (interrupt status, error bits) from device threads.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <span>

#include "base/result.h"
#include "base/state_archive.h"

namespace vireo {

namespace pci {

// Type 0 header offsets (PCI Local Bus 3.0 Figure 6-1).
inline constexpr std::uint16_t kVendorId = 0x00;
inline constexpr std::uint16_t kDeviceId = 0x02;
inline constexpr std::uint16_t kCommand = 0x04;
inline constexpr std::uint16_t kStatus = 0x06;
inline constexpr std::uint16_t kRevisionId = 0x08;
inline constexpr std::uint16_t kClassCode = 0x09;  // 3 bytes: prog-if, subclass, base class
inline constexpr std::uint16_t kCacheLineSize = 0x0c;
inline constexpr std::uint16_t kLatencyTimer = 0x0d;
inline constexpr std::uint16_t kHeaderType = 0x0e;
inline constexpr std::uint16_t kBar0 = 0x10;  // BAR n at kBar0 + 4 * n, n = 0..5
inline constexpr std::uint16_t kSubsystemVendorId = 0x2c;
inline constexpr std::uint16_t kSubsystemId = 0x2e;
inline constexpr std::uint16_t kExpansionRom = 0x30;
inline constexpr std::uint16_t kCapabilitiesPointer = 0x34;
inline constexpr std::uint16_t kInterruptLine = 0x3c;
inline constexpr std::uint16_t kInterruptPin = 0x3d;

// Command register bits (§6.2.2).
inline constexpr std::uint16_t kCommandIo = 1U << 0;
inline constexpr std::uint16_t kCommandMemory = 1U << 1;
inline constexpr std::uint16_t kCommandBusMaster = 1U << 2;
inline constexpr std::uint16_t kCommandParityErrorResponse = 1U << 6;
inline constexpr std::uint16_t kCommandSerr = 1U << 8;
inline constexpr std::uint16_t kCommandIntxDisable = 1U << 10;

// Status register bits (§6.2.3). The error bits are write-1-to-clear.
inline constexpr std::uint16_t kStatusInterrupt = 1U << 3;
inline constexpr std::uint16_t kStatusCapabilitiesList = 1U << 4;
inline constexpr std::uint16_t kStatusMasterDataParityError = 1U << 8;
inline constexpr std::uint16_t kStatusSignaledTargetAbort = 1U << 11;
inline constexpr std::uint16_t kStatusReceivedTargetAbort = 1U << 12;
inline constexpr std::uint16_t kStatusReceivedMasterAbort = 1U << 13;
inline constexpr std::uint16_t kStatusSignaledSystemError = 1U << 14;
inline constexpr std::uint16_t kStatusDetectedParityError = 1U << 15;

// BAR low bits (§6.2.5.1).
inline constexpr std::uint32_t kBarIoSpace = 1U << 0;
inline constexpr std::uint32_t kBarMemType64 = 2U << 1;  // bits 2:1 = 10b
inline constexpr std::uint32_t kBarPrefetchable = 1U << 3;

// Capability IDs (PCI Code and ID Assignment 1.11 §2).
inline constexpr std::uint8_t kCapVendorSpecific = 0x09;
inline constexpr std::uint8_t kCapMsix = 0x11;

}  // namespace pci

enum class PciBarKind : std::uint8_t { Memory32, Memory64, Io };

// Interrupt Pin register values (§6.2.4): which INTx# the function uses.
enum class PciInterruptPin : std::uint8_t { None = 0, IntA = 1, IntB = 2, IntC = 3, IntD = 4 };

struct PciBar {
    PciBarKind kind;
    std::uint64_t size;  // power of two
    bool prefetchable;
    std::uint64_t address;  // what the BAR register(s) hold now
};

// The read-only identity of a function.
struct PciHeader {
    std::uint16_t vendor_id = 0xffff;
    std::uint16_t device_id = 0xffff;
    std::uint32_t class_code = 0;  // base class << 16 | subclass << 8 | programming interface
    std::uint8_t revision_id = 0;
    std::uint16_t subsystem_vendor_id = 0;
    std::uint16_t subsystem_id = 0;
    PciInterruptPin interrupt_pin = PciInterruptPin::None;
};

// What a snapshot saves. The masks and BAR shapes are not state: the device recreates them.
struct PciConfigSpaceState {
    std::array<std::uint8_t, 4096> bytes{};
};

class PciConfigSpace {
public:
    static constexpr std::size_t kSize = 4096;
    static constexpr std::size_t kLegacySize = 256;  // capabilities must end below this
    static constexpr std::uint16_t kCapabilitiesStart = 0x40;
    static constexpr int kNumBars = 6;

    explicit PciConfigSpace(const PciHeader& header);
    PciConfigSpace(const PciConfigSpace&) = delete;
    PciConfigSpace& operator=(const PciConfigSpace&) = delete;

    // Guest config cycles, any width. Bytes past 4 KiB read as all-ones and ignore writes.
    void read(std::uint16_t offset, std::span<std::uint8_t> data) const;
    void write(std::uint16_t offset, std::span<const std::uint8_t> data);
    std::uint8_t read8(std::uint16_t offset) const;
    std::uint16_t read16(std::uint16_t offset) const;
    std::uint32_t read32(std::uint16_t offset) const;

    // --- Setup (device construction, firmware-style placement) ---

    // Declares BAR `index` (0-5); a Memory64 BAR also takes index + 1. Sizes are powers of two:
    // memory >= 16 bytes (Memory32 <= 2 GiB), I/O 4-256 bytes (§6.2.5.1). Prefetchable only for
    // memory. The address starts at 0 (unassigned).
    Result<void> add_bar(int index, std::uint64_t size, PciBarKind kind, bool prefetchable);
    // Appends a capability: ID, next pointer, then `body` (the bytes after the two-byte header).
    // Placed 4-byte aligned from 0x40, chained from Capabilities Pointer (0x34), Status bit 4 set.
    // Returns its offset; Error when it does not fit below 0x100. The body is read-only to the
    // guest until set_write_mask() says otherwise.
    Result<std::uint16_t> add_capability(std::uint8_t id, std::span<const std::uint8_t> body);
    // Sets the guest-writable bits of the bytes from `offset` (e.g. a capability's control word).
    void set_write_mask(std::uint16_t offset, std::span<const std::uint8_t> mask);
    // Stores bytes regardless of masks: the device updating registers it owns.
    void set_bytes(std::uint16_t offset, std::span<const std::uint8_t> bytes);

    // BAR `index` when it is the first register of a declared BAR, else nullopt.
    std::optional<PciBar> bar(int index) const;
    std::uint64_t bar_address(int index) const;  // 0 when there is no such BAR
    // Firmware placement: `address` must be aligned to the BAR size, inside 4 GiB for Memory32
    // and inside the 64 KiB port space for I/O.
    Result<void> set_bar_address(int index, std::uint64_t address);

    void set_interrupt_line(std::uint8_t line);
    PciInterruptPin interrupt_pin() const;
    // Status bit 3, the INTx# level as the device drives it (§6.2.3).
    void set_interrupt_status(bool asserted);
    // Raises Status error bits (e.g. Received Master Abort); the guest clears them by writing 1.
    void raise_status(std::uint16_t bits);

    std::uint16_t command() const;
    bool io_enabled() const { return (command() & pci::kCommandIo) != 0; }
    bool memory_enabled() const { return (command() & pci::kCommandMemory) != 0; }
    bool bus_master_enabled() const { return (command() & pci::kCommandBusMaster) != 0; }
    bool intx_disabled() const { return (command() & pci::kCommandIntxDisable) != 0; }

    PciConfigSpaceState save_state() const;
    // Fails (and changes nothing) when the saved identity is another device's.
    Result<void> restore_state(const PciConfigSpaceState& state);

private:
    struct BarSlot {
        PciBarKind kind;
        std::uint64_t size;
        bool prefetchable;
        bool upper_half;  // the high dword of the Memory64 BAR in the slot below
    };

    std::uint32_t load32(std::size_t offset) const;  // callers hold m_mutex
    void store32(std::size_t offset, std::uint32_t value, std::array<std::uint8_t, kSize>& to);
    std::uint64_t bar_address_locked(int index) const;

    mutable std::mutex m_mutex;
    std::array<std::uint8_t, kSize> m_bytes{};
    std::array<std::uint8_t, kSize> m_write_mask{};
    std::array<std::uint8_t, kSize> m_w1c_mask{};
    std::array<std::optional<BarSlot>, kNumBars> m_bars{};
    std::uint16_t m_last_capability = 0;  // 0: no capability yet
    std::uint16_t m_next_capability = kCapabilitiesStart;
};

template <typename Ar>
void persist(Ar& ar, PciConfigSpaceState& s) {
    ar(s.bytes);
}

}  // namespace vireo
