#include "accel/soft/soft_ioapic.h"

#include <cstring>

namespace vireo::soft {

namespace {
// Redirection entry bits (IOAPIC datasheet §3.2.4).
constexpr std::uint64_t kMasked = 1ULL << 16, kLevel = 1ULL << 15, kRemoteIrr = 1ULL << 14,
                        kLogical = 1ULL << 11;
}  // namespace

SoftIoApic::SoftIoApic(Deliver deliver) : m_deliver(std::move(deliver)) {
    for (auto& r : m_redir) {
        r = kMasked;  // every pin masked at reset
    }
}

void SoftIoApic::service_locked(std::uint32_t pin) {
    std::uint64_t& r = m_redir[pin];
    if ((r & kMasked) != 0 || !m_level[pin]) {
        return;
    }
    const bool level = (r & kLevel) != 0;
    if (level) {
        if ((r & kRemoteIrr) != 0) {
            return;
        }
        r |= kRemoteIrr;
    }
    m_deliver(static_cast<std::uint8_t>(r >> 56), (r & kLogical) != 0,
              static_cast<std::uint8_t>(r & 0xff), level);
}

void SoftIoApic::set_level(std::uint32_t pin, bool high) {
    if (pin >= kPins) {
        return;
    }
    std::lock_guard lock(m_mutex);
    const bool was = m_level[pin];
    m_level[pin] = high;
    // Edge pins fire on the rising edge; level pins whenever high and not in service.
    if (high && (!was || (m_redir[pin] & kLevel) != 0)) {
        service_locked(pin);
    }
}

void SoftIoApic::eoi(std::uint8_t vector) {
    std::lock_guard lock(m_mutex);
    for (std::uint32_t pin = 0; pin < kPins; ++pin) {
        std::uint64_t& r = m_redir[pin];
        if ((r & kLevel) != 0 && (r & 0xff) == vector && (r & kRemoteIrr) != 0) {
            r &= ~kRemoteIrr;
            service_locked(pin);  // still asserted: deliver again
        }
    }
}

void SoftIoApic::mmio_read(std::uint64_t offset, std::span<std::uint8_t> data) {
    std::uint32_t v = 0;
    {
        std::lock_guard lock(m_mutex);
        if (offset == 0x00) {
            v = m_select;
        } else if (offset == 0x10) {
            const std::uint32_t sel = m_select & 0xff;
            if (sel == 0x00) {
                v = m_id;
            } else if (sel == 0x01) {
                v = ((kPins - 1) << 16) | 0x11;  // version 0x11, 24 entries
            } else if (sel == 0x02) {
                v = m_id;  // arbitration ID
            } else if (sel >= 0x10 && sel < 0x10 + 2 * kPins) {
                const std::uint64_t r = m_redir[(sel - 0x10) / 2];
                v = static_cast<std::uint32_t>((sel & 1) ? r >> 32 : r);
            }
        }
    }
    for (std::size_t i = 0; i < data.size(); ++i) {
        data[i] = i < 4 ? static_cast<std::uint8_t>(v >> (8 * i)) : 0;
    }
}

void SoftIoApic::mmio_write(std::uint64_t offset, std::span<const std::uint8_t> data) {
    if (data.size() < 4) {
        return;
    }
    std::uint32_t v = 0;
    std::memcpy(&v, data.data(), 4);
    std::lock_guard lock(m_mutex);
    if (offset == 0x00) {
        m_select = v & 0xff;
    } else if (offset == 0x10) {
        const std::uint32_t sel = m_select;
        if (sel == 0x00) {
            m_id = v & 0x0f000000;
        } else if (sel >= 0x10 && sel < 0x10 + 2 * kPins) {
            const std::uint32_t pin = (sel - 0x10) / 2;
            std::uint64_t& r = m_redir[pin];
            if (sel & 1) {
                r = (r & 0xffffffffULL) | (static_cast<std::uint64_t>(v) << 32);
            } else {
                // Delivery status (bit 12) and Remote IRR (bit 14) are read-only.
                const std::uint64_t ro = (1ULL << 12) | kRemoteIrr;
                r = (r & ~0xffffffffULL) | (r & ro) | (v & ~ro & 0xffffffffULL);
            }
            service_locked(pin);  // unmasking a pin that is high delivers it
        }
    } else if (offset == 0x40) {
        // Directed EOI register (version 0x20); harmless to honour.
        for (std::uint32_t pin = 0; pin < kPins; ++pin) {
            if ((m_redir[pin] & 0xff) == (v & 0xff)) {
                m_redir[pin] &= ~kRemoteIrr;
            }
        }
    }
}

std::vector<std::uint8_t> SoftIoApic::save() const {
    std::lock_guard lock(m_mutex);
    std::vector<std::uint8_t> out(8 + 8 * kPins + kPins);
    std::memcpy(out.data(), &m_select, 4);
    std::memcpy(out.data() + 4, &m_id, 4);
    std::memcpy(out.data() + 8, m_redir.data(), 8 * kPins);
    for (std::uint32_t i = 0; i < kPins; ++i) {
        out[8 + 8 * kPins + i] = m_level[i] ? 1 : 0;
    }
    return out;
}

bool SoftIoApic::restore(std::span<const std::uint8_t> bytes) {
    if (bytes.size() != 8 + 8 * kPins + kPins) {
        return false;
    }
    std::lock_guard lock(m_mutex);
    std::memcpy(&m_select, bytes.data(), 4);
    std::memcpy(&m_id, bytes.data() + 4, 4);
    std::memcpy(m_redir.data(), bytes.data() + 8, 8 * kPins);
    for (std::uint32_t i = 0; i < kPins; ++i) {
        m_level[i] = bytes[8 + 8 * kPins + i] != 0;
    }
    return true;
}

}  // namespace vireo::soft
