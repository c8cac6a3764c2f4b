#include "devices/pci/msix.h"

#include <algorithm>
#include <array>

#include <fmt/format.h>

namespace vireo {

namespace {

// Message Control (§6.8.2.3).
constexpr std::uint16_t kControlTableSizeMask = 0x07ff;  // N - 1
constexpr std::uint16_t kControlFunctionMask = 1U << 14;
constexpr std::uint16_t kControlEnable = 1U << 15;
constexpr std::uint8_t kControlHighByteWritable = 0xc0;  // bits 15:14 of the word
constexpr std::uint16_t kControlOffset = 2;              // from the capability start
constexpr std::uint32_t kBirMask = 0x7;                  // Table/PBA BIR, bits 2:0

// Table entry dwords (§6.8.2.6-9) and what the guest may set in each.
constexpr std::size_t kFieldAddressLo = 0;
constexpr std::size_t kFieldAddressHi = 1;
constexpr std::size_t kFieldData = 2;
constexpr std::size_t kFieldVectorControl = 3;
constexpr std::uint32_t kAddressLoWritable = ~std::uint32_t{0x3};  // DWORD aligned: 1:0 are 0
constexpr std::uint32_t kVectorControlMask = 1U << 0;              // 31:1 reserved, read 0

bool is_dword_or_qword(std::uint64_t offset, std::size_t size) {
    return (size == 4 || size == 8) && offset % size == 0;
}

void fill_ones(std::span<std::uint8_t> data) {
    std::fill(data.begin(), data.end(), std::uint8_t{0xff});
}

std::uint64_t get_le(std::span<const std::uint8_t> data) {
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < data.size() && i < 8; ++i) {
        v |= std::uint64_t{data[i]} << (8 * i);
    }
    return v;
}

void put_le(std::span<std::uint8_t> data, std::uint64_t v) {
    for (std::size_t i = 0; i < data.size() && i < 8; ++i) {
        data[i] = static_cast<std::uint8_t>(v >> (8 * i));
    }
}

// Where an access lands relative to a region [start, start + length).
enum class Overlap { None, Inside, Partial };
Overlap overlap(std::uint64_t offset, std::size_t size, std::uint64_t start, std::size_t length) {
    const std::uint64_t end = offset + size;  // offset and size are both far below 2^63
    if (end <= start || offset >= start + length) {
        return Overlap::None;
    }
    return (offset >= start && end <= start + length) ? Overlap::Inside : Overlap::Partial;
}

}  // namespace

Result<std::unique_ptr<MsixTable>> MsixTable::create(MsiController& controller,
                                                     std::size_t vectors) {
    if (vectors == 0 || vectors > kMaxVectors) {
        return Error(fmt::format("msix: {} vectors, need 1-{}", vectors, kMaxVectors));
    }
    std::vector<std::unique_ptr<MsiRoute>> routes;
    routes.reserve(vectors);
    for (std::size_t i = 0; i < vectors; ++i) {
        auto route = controller.create_msi_route();
        if (!route) {
            return route.error().wrap(fmt::format("msix: route for vector {}", i));
        }
        routes.push_back(std::move(route).value());
    }
    return std::unique_ptr<MsixTable>(new MsixTable(std::move(routes)));
}

MsixTable::MsixTable(std::vector<std::unique_ptr<MsiRoute>> routes)
    : m_routes(std::move(routes)),
      m_entries(m_routes.size()),
      m_dirty(m_routes.size(), true),
      m_pending((m_routes.size() + 63) / 64, 0) {}

Result<std::uint16_t> MsixTable::attach(PciConfigSpace& config, const MsixLayout& layout) {
    if (m_config != nullptr) {
        return Error("msix: already attached");
    }
    if (layout.table_offset % 8 != 0 || layout.pba_offset % 8 != 0) {
        return Error("msix: table and PBA offsets must be QWORD aligned");
    }
    auto check_bar = [&](int index, std::uint64_t offset, std::uint64_t size,
                         const char* what) -> Result<void> {
        const auto bar = config.bar(index);
        if (!bar || bar->kind == PciBarKind::Io) {
            return Error(fmt::format("msix: {} BAR {} is not a memory BAR", what, index));
        }
        if (offset > bar->size || size > bar->size - offset) {
            return Error(fmt::format("msix: {} does not fit BAR {}", what, index));
        }
        return ok();
    };
    if (auto r = check_bar(layout.table_bar, layout.table_offset, table_size_bytes(), "table");
        !r) {
        return r.error();
    }
    if (auto r = check_bar(layout.pba_bar, layout.pba_offset, pba_size_bytes(), "PBA"); !r) {
        return r.error();
    }
    if (layout.table_bar == layout.pba_bar &&
        overlap(layout.pba_offset, pba_size_bytes(), layout.table_offset, table_size_bytes()) !=
            Overlap::None) {
        return Error("msix: table and PBA overlap");
    }

    // Capability body after ID/next (§6.8.2.1): Message Control, Table Offset/BIR, PBA
    // Offset/BIR.
    std::array<std::uint8_t, kCapabilityBodySize> body{};
    const auto control = static_cast<std::uint16_t>((vectors() - 1) & kControlTableSizeMask);
    put_le(std::span(body).subspan(0, 2), control);
    put_le(std::span(body).subspan(2, 4),
           layout.table_offset | (static_cast<std::uint32_t>(layout.table_bar) & kBirMask));
    put_le(std::span(body).subspan(6, 4),
           layout.pba_offset | (static_cast<std::uint32_t>(layout.pba_bar) & kBirMask));
    auto at = config.add_capability(pci::kCapMsix, body);
    if (!at) {
        return at.error();
    }
    const std::array<std::uint8_t, 2> writable{0x00, kControlHighByteWritable};
    config.set_write_mask(static_cast<std::uint16_t>(*at + kControlOffset), writable);
    std::lock_guard lock(m_mutex);
    m_config = &config;
    m_capability = *at;
    m_layout = layout;
    return *at;
}

void MsixTable::config_written(std::uint16_t offset, std::size_t size) {
    if (m_config == nullptr ||
        overlap(offset, size, std::uint64_t{m_capability} + kControlOffset, 2) == Overlap::None) {
        return;
    }
    const std::uint16_t control =
        m_config->read16(static_cast<std::uint16_t>(m_capability + kControlOffset));
    std::lock_guard lock(m_mutex);
    m_enabled = (control & kControlEnable) != 0;
    m_function_masked = (control & kControlFunctionMask) != 0;
    deliver_pending();
}

bool MsixTable::bar_read(int bar, std::uint64_t offset, std::span<std::uint8_t> data) {
    if (m_config == nullptr) {
        return false;
    }
    if (bar == m_layout.table_bar) {
        switch (overlap(offset, data.size(), m_layout.table_offset, table_size_bytes())) {
            case Overlap::Inside:
                table_read(offset - m_layout.table_offset, data);
                return true;
            case Overlap::Partial:
                table_read(table_size_bytes(), data);  // refused and counted
                return true;
            case Overlap::None:
                break;
        }
    }
    if (bar == m_layout.pba_bar) {
        switch (overlap(offset, data.size(), m_layout.pba_offset, pba_size_bytes())) {
            case Overlap::Inside:
                pba_read(offset - m_layout.pba_offset, data);
                return true;
            case Overlap::Partial:
                pba_read(pba_size_bytes(), data);
                return true;
            case Overlap::None:
                break;
        }
    }
    return false;
}

bool MsixTable::bar_write(int bar, std::uint64_t offset, std::span<const std::uint8_t> data) {
    if (m_config == nullptr) {
        return false;
    }
    if (bar == m_layout.table_bar) {
        switch (overlap(offset, data.size(), m_layout.table_offset, table_size_bytes())) {
            case Overlap::Inside:
                table_write(offset - m_layout.table_offset, data);
                return true;
            case Overlap::Partial:
                table_write(table_size_bytes(), data);
                return true;
            case Overlap::None:
                break;
        }
    }
    if (bar == m_layout.pba_bar &&
        overlap(offset, data.size(), m_layout.pba_offset, pba_size_bytes()) != Overlap::None) {
        // The PBA is read-only (§6.8.2.10); writes are dropped.
        return true;
    }
    return false;
}

void MsixTable::table_read(std::uint64_t offset, std::span<std::uint8_t> data) {
    std::lock_guard lock(m_mutex);
    if (!is_dword_or_qword(offset, data.size()) || offset >= table_size_bytes()) {
        ++m_bad_accesses;
        fill_ones(data);
        return;
    }
    const auto vector = static_cast<std::size_t>(offset / kEntrySize);
    const auto field = static_cast<std::size_t>(offset % kEntrySize) / 4;
    std::uint64_t v = read_dword(vector, field);
    if (data.size() == 8) {  // QWORD at field 0 or 2: the next dword is in the same entry
        v |= std::uint64_t{read_dword(vector, field + 1)} << 32;
    }
    put_le(data, v);
}

void MsixTable::table_write(std::uint64_t offset, std::span<const std::uint8_t> data) {
    std::lock_guard lock(m_mutex);
    if (!is_dword_or_qword(offset, data.size()) || offset >= table_size_bytes()) {
        ++m_bad_accesses;
        return;
    }
    const auto vector = static_cast<std::size_t>(offset / kEntrySize);
    const auto field = static_cast<std::size_t>(offset % kEntrySize) / 4;
    const std::uint64_t v = get_le(data);
    write_dword(vector, field, static_cast<std::uint32_t>(v));
    if (data.size() == 8) {
        write_dword(vector, field + 1, static_cast<std::uint32_t>(v >> 32));
    }
}

void MsixTable::pba_read(std::uint64_t offset, std::span<std::uint8_t> data) {
    std::lock_guard lock(m_mutex);
    if (!is_dword_or_qword(offset, data.size()) || offset >= pba_size_bytes()) {
        ++m_bad_accesses;
        fill_ones(data);
        return;
    }
    const std::uint64_t qword = m_pending[static_cast<std::size_t>(offset / 8)];
    put_le(data, qword >> (8 * (offset % 8)));
}

std::uint32_t MsixTable::read_dword(std::size_t vector, std::size_t field) const {
    const MsixEntry& e = m_entries[vector];
    switch (field) {
        case kFieldAddressLo:
            return e.address_lo;
        case kFieldAddressHi:
            return e.address_hi;
        case kFieldData:
            return e.data;
        default:
            return e.vector_control;
    }
}

void MsixTable::write_dword(std::size_t vector, std::size_t field, std::uint32_t value) {
    MsixEntry& e = m_entries[vector];
    switch (field) {
        case kFieldAddressLo:
            e.address_lo = value & kAddressLoWritable;
            m_dirty[vector] = true;
            return;
        case kFieldAddressHi:
            e.address_hi = value;
            m_dirty[vector] = true;
            return;
        case kFieldData:
            e.data = value;
            m_dirty[vector] = true;
            return;
        case kFieldVectorControl: {
            const bool was_masked = (e.vector_control & kVectorControlMask) != 0;
            e.vector_control = value & kVectorControlMask;
            if (was_masked && (e.vector_control & kVectorControlMask) == 0 && deliverable(vector)) {
                // Unmasked: point the route now (on the vCPU thread rather than in the next
                // notify) and deliver what was pending (§6.8.2.9).
                if (pending_locked(vector)) {
                    set_pending(vector, false);
                    deliver(vector);
                } else {
                    commit(vector);
                }
            }
            return;
        }
        default:
            return;
    }
}

bool MsixTable::deliverable(std::size_t vector) const {
    return m_enabled && !m_function_masked &&
           (m_entries[vector].vector_control & kVectorControlMask) == 0;
}

bool MsixTable::commit(std::size_t vector) {
    if (!m_dirty[vector]) {
        return true;
    }
    const MsixEntry& e = m_entries[vector];
    const MsiMessage message{(std::uint64_t{e.address_hi} << 32) | e.address_lo, e.data};
    if (auto r = m_routes[vector]->set_message(message); !r) {
        ++m_route_errors;
        return false;
    }
    m_dirty[vector] = false;
    return true;
}

void MsixTable::deliver(std::size_t vector) {
    if (commit(vector)) {
        m_routes[vector]->trigger();
    }
}

void MsixTable::deliver_pending() {
    if (!m_enabled || m_function_masked) {
        return;
    }
    for (std::size_t v = 0; v < m_entries.size(); ++v) {
        if (!deliverable(v)) {
            continue;
        }
        if (pending_locked(v)) {
            set_pending(v, false);
            deliver(v);
        } else {
            commit(v);
        }
    }
}

bool MsixTable::pending(std::size_t vector) const {
    std::lock_guard lock(m_mutex);
    return pending_locked(vector);
}

bool MsixTable::pending_locked(std::size_t vector) const {
    return vector < m_entries.size() && ((m_pending[vector / 64] >> (vector % 64)) & 1) != 0;
}

void MsixTable::set_pending(std::size_t vector, bool on) {
    const std::uint64_t bit = std::uint64_t{1} << (vector % 64);
    if (on) {
        m_pending[vector / 64] |= bit;
    } else {
        m_pending[vector / 64] &= ~bit;
    }
}

MsixDelivery MsixTable::notify(std::size_t vector) {
    std::lock_guard lock(m_mutex);
    if (vector >= m_entries.size()) {
        return MsixDelivery::NoVector;
    }
    if (!m_enabled) {
        return MsixDelivery::Disabled;
    }
    if (m_function_masked || (m_entries[vector].vector_control & kVectorControlMask) != 0) {
        set_pending(vector, true);
        return MsixDelivery::Pending;
    }
    if (!commit(vector)) {
        return MsixDelivery::RouteError;
    }
    m_routes[vector]->trigger();
    return MsixDelivery::Delivered;
}

bool MsixTable::enabled() const {
    std::lock_guard lock(m_mutex);
    return m_enabled;
}

bool MsixTable::function_masked() const {
    std::lock_guard lock(m_mutex);
    return m_function_masked;
}

MsixEntry MsixTable::entry(std::size_t vector) const {
    std::lock_guard lock(m_mutex);
    return vector < m_entries.size() ? m_entries[vector] : MsixEntry{};
}

std::uint64_t MsixTable::bad_accesses() const {
    std::lock_guard lock(m_mutex);
    return m_bad_accesses;
}

std::uint64_t MsixTable::route_errors() const {
    std::lock_guard lock(m_mutex);
    return m_route_errors;
}

MsixTableState MsixTable::save_state() const {
    std::lock_guard lock(m_mutex);
    return MsixTableState{m_entries, m_pending, m_enabled, m_function_masked};
}

Result<void> MsixTable::restore_state(const MsixTableState& state) {
    std::lock_guard lock(m_mutex);
    if (state.entries.size() != m_entries.size() || state.pending.size() != m_pending.size()) {
        return Error(fmt::format("msix: snapshot has {} vectors, the device {}",
                                 state.entries.size(), m_entries.size()));
    }
    m_entries = state.entries;
    for (auto& e : m_entries) {  // re-impose the read-only bits
        e.address_lo &= kAddressLoWritable;
        e.vector_control &= kVectorControlMask;
    }
    m_pending = state.pending;
    if (m_entries.size() % 64 != 0) {  // bits past the last vector read 0
        m_pending.back() &= (std::uint64_t{1} << (m_entries.size() % 64)) - 1;
    }
    m_enabled = state.enabled;
    m_function_masked = state.function_masked;
    std::fill(m_dirty.begin(), m_dirty.end(), true);
    return ok();
}

}  // namespace vireo
