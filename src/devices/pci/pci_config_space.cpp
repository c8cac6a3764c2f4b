#include "devices/pci/pci_config_space.h"

#include <bit>

#include <fmt/format.h>

namespace vireo {

namespace {

// Command bits a guest may change (§6.2.2). The others are hardwired to 0: no special cycles,
// no memory-write-and-invalidate, no VGA palette snooping, no fast back-to-back.
constexpr std::uint16_t kCommandWritable =
    pci::kCommandIo | pci::kCommandMemory | pci::kCommandBusMaster |
    pci::kCommandParityErrorResponse | pci::kCommandSerr | pci::kCommandIntxDisable;
constexpr std::uint16_t kStatusW1c =
    pci::kStatusMasterDataParityError | pci::kStatusSignaledTargetAbort |
    pci::kStatusReceivedTargetAbort | pci::kStatusReceivedMasterAbort |
    pci::kStatusSignaledSystemError | pci::kStatusDetectedParityError;

constexpr std::uint64_t kMinMemoryBar = 16;
constexpr std::uint64_t kMaxMemory32Bar = std::uint64_t{1} << 31;
constexpr std::uint64_t kMaxMemory64Bar = std::uint64_t{1} << 63;
constexpr std::uint64_t kMinIoBar = 4;
constexpr std::uint64_t kMaxIoBar = 256;
constexpr std::uint64_t kIoSpaceEnd = 0x10000;

constexpr std::size_t bar_offset(int index) {
    return pci::kBar0 + 4 * static_cast<std::size_t>(index);
}

void put16(std::array<std::uint8_t, PciConfigSpace::kSize>& a, std::size_t off, std::uint16_t v) {
    a[off] = static_cast<std::uint8_t>(v);
    a[off + 1] = static_cast<std::uint8_t>(v >> 8);
}

std::uint32_t get32(const std::array<std::uint8_t, PciConfigSpace::kSize>& a, std::size_t off) {
    return std::uint32_t{a[off]} | (std::uint32_t{a[off + 1]} << 8) |
           (std::uint32_t{a[off + 2]} << 16) | (std::uint32_t{a[off + 3]} << 24);
}

}  // namespace

PciConfigSpace::PciConfigSpace(const PciHeader& header) {
    put16(m_bytes, pci::kVendorId, header.vendor_id);
    put16(m_bytes, pci::kDeviceId, header.device_id);
    m_bytes[pci::kRevisionId] = header.revision_id;
    m_bytes[pci::kClassCode] = static_cast<std::uint8_t>(header.class_code);
    m_bytes[pci::kClassCode + 1] = static_cast<std::uint8_t>(header.class_code >> 8);
    m_bytes[pci::kClassCode + 2] = static_cast<std::uint8_t>(header.class_code >> 16);
    m_bytes[pci::kHeaderType] = 0x00;  // type 0, single function (bit 7 clear)
    put16(m_bytes, pci::kSubsystemVendorId, header.subsystem_vendor_id);
    put16(m_bytes, pci::kSubsystemId, header.subsystem_id);
    m_bytes[pci::kInterruptPin] = static_cast<std::uint8_t>(header.interrupt_pin);

    put16(m_write_mask, pci::kCommand, kCommandWritable);
    put16(m_w1c_mask, pci::kStatus, kStatusW1c);
    m_write_mask[pci::kCacheLineSize] = 0xff;  // has no effect; Linux writes it
    m_write_mask[pci::kInterruptLine] = 0xff;  // scratch for the OS (§6.2.4)
    // Latency Timer, BIST, Expansion ROM (no ROM: sizing reads back 0) stay read-only zero.
}

void PciConfigSpace::read(std::uint16_t offset, std::span<std::uint8_t> data) const {
    std::lock_guard lock(m_mutex);
    for (std::size_t i = 0; i < data.size(); ++i) {
        const std::size_t at = std::size_t{offset} + i;
        data[i] = at < kSize ? m_bytes[at] : 0xff;
    }
}

void PciConfigSpace::write(std::uint16_t offset, std::span<const std::uint8_t> data) {
    std::lock_guard lock(m_mutex);
    for (std::size_t i = 0; i < data.size(); ++i) {
        const std::size_t at = std::size_t{offset} + i;
        if (at >= kSize) {
            break;
        }
        const std::uint8_t v = data[i];
        std::uint8_t b =
            static_cast<std::uint8_t>((m_bytes[at] & ~m_write_mask[at]) | (v & m_write_mask[at]));
        b = static_cast<std::uint8_t>(b & ~(v & m_w1c_mask[at]));
        m_bytes[at] = b;
    }
}

std::uint8_t PciConfigSpace::read8(std::uint16_t offset) const {
    std::uint8_t v = 0;
    read(offset, std::span(&v, 1));
    return v;
}

std::uint16_t PciConfigSpace::read16(std::uint16_t offset) const {
    std::array<std::uint8_t, 2> b{};
    read(offset, b);
    return static_cast<std::uint16_t>(b[0] | (b[1] << 8));
}

std::uint32_t PciConfigSpace::read32(std::uint16_t offset) const {
    std::array<std::uint8_t, 4> b{};
    read(offset, b);
    return std::uint32_t{b[0]} | (std::uint32_t{b[1]} << 8) | (std::uint32_t{b[2]} << 16) |
           (std::uint32_t{b[3]} << 24);
}

std::uint32_t PciConfigSpace::load32(std::size_t offset) const {
    return get32(m_bytes, offset);
}

void PciConfigSpace::store32(std::size_t offset, std::uint32_t value,
                             std::array<std::uint8_t, kSize>& to) {
    for (std::size_t i = 0; i < 4; ++i) {
        to[offset + i] = static_cast<std::uint8_t>(value >> (8 * i));
    }
}

Result<void> PciConfigSpace::add_bar(int index, std::uint64_t size, PciBarKind kind,
                                     bool prefetchable) {
    const int slots = kind == PciBarKind::Memory64 ? 2 : 1;
    if (index < 0 || index + slots > kNumBars) {
        return Error(fmt::format("pci: BAR {} out of range", index));
    }
    if (!std::has_single_bit(size)) {
        return Error(fmt::format("pci: BAR {} size {:#x} is not a power of two", index, size));
    }
    switch (kind) {
        case PciBarKind::Io:
            if (size < kMinIoBar || size > kMaxIoBar || prefetchable) {
                return Error(fmt::format("pci: I/O BAR {} of {:#x} bytes (4-256, not prefetchable)",
                                         index, size));
            }
            break;
        case PciBarKind::Memory32:
            if (size < kMinMemoryBar || size > kMaxMemory32Bar) {
                return Error(fmt::format("pci: 32-bit BAR {} of {:#x} bytes", index, size));
            }
            break;
        case PciBarKind::Memory64:
            if (size < kMinMemoryBar || size > kMaxMemory64Bar) {
                return Error(fmt::format("pci: 64-bit BAR {} of {:#x} bytes", index, size));
            }
            break;
    }
    std::lock_guard lock(m_mutex);
    for (int i = index; i < index + slots; ++i) {
        if (m_bars[static_cast<std::size_t>(i)]) {
            return Error(fmt::format("pci: BAR {} is already taken", i));
        }
    }
    const std::size_t off = bar_offset(index);
    const std::uint64_t address_mask = ~(size - 1);
    std::uint32_t flags = 0;
    std::uint32_t low_mask = 0;
    if (kind == PciBarKind::Io) {
        flags = pci::kBarIoSpace;
        low_mask = static_cast<std::uint32_t>(address_mask) & ~std::uint32_t{0x3};
    } else {
        flags = (kind == PciBarKind::Memory64 ? pci::kBarMemType64 : 0) |
                (prefetchable ? pci::kBarPrefetchable : 0);
        low_mask = static_cast<std::uint32_t>(address_mask) & ~std::uint32_t{0xf};
    }
    store32(off, flags, m_bytes);
    store32(off, low_mask, m_write_mask);
    m_bars[static_cast<std::size_t>(index)] = BarSlot{kind, size, prefetchable, false};
    if (kind == PciBarKind::Memory64) {
        store32(off + 4, 0, m_bytes);
        store32(off + 4, static_cast<std::uint32_t>(address_mask >> 32), m_write_mask);
        m_bars[static_cast<std::size_t>(index) + 1] = BarSlot{kind, size, prefetchable, true};
    }
    return ok();
}

Result<std::uint16_t> PciConfigSpace::add_capability(std::uint8_t id,
                                                     std::span<const std::uint8_t> body) {
    std::lock_guard lock(m_mutex);
    const std::size_t at = m_next_capability;
    const std::size_t length = 2 + body.size();
    if (at + length > kLegacySize) {
        return Error(
            fmt::format("pci: capability {:#x} of {} bytes does not fit at {:#x}", id, length, at));
    }
    m_bytes[at] = id;
    m_bytes[at + 1] = 0;  // end of the list
    for (std::size_t i = 0; i < body.size(); ++i) {
        m_bytes[at + 2 + i] = body[i];
    }
    if (m_last_capability == 0) {
        m_bytes[pci::kCapabilitiesPointer] = static_cast<std::uint8_t>(at);
        m_bytes[pci::kStatus] |= pci::kStatusCapabilitiesList;
    } else {
        m_bytes[std::size_t{m_last_capability} + 1] = static_cast<std::uint8_t>(at);
    }
    m_last_capability = static_cast<std::uint16_t>(at);
    // The next one starts 4-byte aligned (§6.7: the bottom two bits of a pointer are reserved).
    m_next_capability = static_cast<std::uint16_t>((at + length + 3) & ~std::size_t{3});
    return static_cast<std::uint16_t>(at);
}

void PciConfigSpace::set_write_mask(std::uint16_t offset, std::span<const std::uint8_t> mask) {
    std::lock_guard lock(m_mutex);
    for (std::size_t i = 0; i < mask.size() && std::size_t{offset} + i < kSize; ++i) {
        m_write_mask[offset + i] = mask[i];
    }
}

void PciConfigSpace::set_bytes(std::uint16_t offset, std::span<const std::uint8_t> bytes) {
    std::lock_guard lock(m_mutex);
    for (std::size_t i = 0; i < bytes.size() && std::size_t{offset} + i < kSize; ++i) {
        m_bytes[offset + i] = bytes[i];
    }
}

std::optional<PciBar> PciConfigSpace::bar(int index) const {
    if (index < 0 || index >= kNumBars) {
        return std::nullopt;
    }
    std::lock_guard lock(m_mutex);
    const auto& slot = m_bars[static_cast<std::size_t>(index)];
    if (!slot || slot->upper_half) {
        return std::nullopt;
    }
    return PciBar{slot->kind, slot->size, slot->prefetchable, bar_address_locked(index)};
}

std::uint64_t PciConfigSpace::bar_address_locked(int index) const {
    const auto& slot = m_bars[static_cast<std::size_t>(index)];
    if (!slot || slot->upper_half) {
        return 0;
    }
    const std::uint32_t low = load32(bar_offset(index));
    switch (slot->kind) {
        case PciBarKind::Io:
            return low & ~std::uint32_t{0x3};
        case PciBarKind::Memory32:
            return low & ~std::uint32_t{0xf};
        case PciBarKind::Memory64:
            return (std::uint64_t{load32(bar_offset(index) + 4)} << 32) |
                   (low & ~std::uint32_t{0xf});
    }
    return 0;
}

std::uint64_t PciConfigSpace::bar_address(int index) const {
    if (index < 0 || index >= kNumBars) {
        return 0;
    }
    std::lock_guard lock(m_mutex);
    return bar_address_locked(index);
}

Result<void> PciConfigSpace::set_bar_address(int index, std::uint64_t address) {
    if (index < 0 || index >= kNumBars) {
        return Error(fmt::format("pci: BAR {} out of range", index));
    }
    std::lock_guard lock(m_mutex);
    const auto& slot = m_bars[static_cast<std::size_t>(index)];
    if (!slot || slot->upper_half) {
        return Error(fmt::format("pci: no BAR {}", index));
    }
    if (address % slot->size != 0) {
        return Error(fmt::format("pci: BAR {} address {:#x} is not aligned to its size {:#x}",
                                 index, address, slot->size));
    }
    const std::uint64_t limit = slot->kind == PciBarKind::Io         ? kIoSpaceEnd
                                : slot->kind == PciBarKind::Memory32 ? std::uint64_t{1} << 32
                                                                     : 0;
    if (limit != 0 && (address > limit || slot->size > limit - address)) {
        return Error(fmt::format("pci: BAR {} address {:#x} out of reach", index, address));
    }
    const std::size_t off = bar_offset(index);
    const std::uint32_t flags = load32(off) & (slot->kind == PciBarKind::Io ? 0x3U : 0xfU);
    store32(off, static_cast<std::uint32_t>(address) | flags, m_bytes);
    if (slot->kind == PciBarKind::Memory64) {
        store32(off + 4, static_cast<std::uint32_t>(address >> 32), m_bytes);
    }
    return ok();
}

void PciConfigSpace::set_interrupt_line(std::uint8_t line) {
    std::lock_guard lock(m_mutex);
    m_bytes[pci::kInterruptLine] = line;
}

PciInterruptPin PciConfigSpace::interrupt_pin() const {
    std::lock_guard lock(m_mutex);
    const std::uint8_t pin = m_bytes[pci::kInterruptPin];
    return pin <= 4 ? static_cast<PciInterruptPin>(pin) : PciInterruptPin::None;
}

void PciConfigSpace::set_interrupt_status(bool asserted) {
    std::lock_guard lock(m_mutex);
    if (asserted) {
        m_bytes[pci::kStatus] |= pci::kStatusInterrupt;
    } else {
        m_bytes[pci::kStatus] &= static_cast<std::uint8_t>(~pci::kStatusInterrupt);
    }
}

void PciConfigSpace::raise_status(std::uint16_t bits) {
    std::lock_guard lock(m_mutex);
    m_bytes[pci::kStatus] |= static_cast<std::uint8_t>(bits);
    m_bytes[pci::kStatus + 1] |= static_cast<std::uint8_t>(bits >> 8);
}

std::uint16_t PciConfigSpace::command() const {
    return read16(pci::kCommand);
}

PciConfigSpaceState PciConfigSpace::save_state() const {
    std::lock_guard lock(m_mutex);
    PciConfigSpaceState s;
    s.bytes = m_bytes;
    return s;
}

Result<void> PciConfigSpace::restore_state(const PciConfigSpaceState& state) {
    std::lock_guard lock(m_mutex);
    // Vendor, device, revision and class identify the function: refuse another device's state.
    for (std::size_t off : {std::size_t{pci::kVendorId}, std::size_t{pci::kRevisionId}}) {
        if (get32(m_bytes, off) != get32(state.bytes, off)) {
            return Error("pci: config space snapshot is of another device");
        }
    }
    m_bytes = state.bytes;
    return ok();
}

}  // namespace vireo
