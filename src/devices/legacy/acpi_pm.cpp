#include "devices/legacy/acpi_pm.h"

#include <algorithm>

namespace vireo {

namespace {
// Sleep control register bits (ACPI 6.4 §4.8.3.7): SLP_TYP in bits 2..4, SLP_EN bit 5.
constexpr std::uint8_t kSlpEn = 0x20;
constexpr unsigned kSlpTypShift = 2;
constexpr std::uint8_t kSlpTypMask = 0x07;
}  // namespace

void AcpiPm::read(std::uint64_t /*offset*/, std::span<std::uint8_t> data) {
    // Sleep status: WAK_STS never set (no sleep state is ever resumed from); control and reset
    // read as zero.
    std::fill(data.begin(), data.end(), 0);
}

void AcpiPm::write(std::uint64_t offset, std::span<const std::uint8_t> data) {
    if (data.empty()) {
        return;
    }
    const std::uint8_t v = data[0];
    if (offset == kSleepControl && (v & kSlpEn) &&
        ((v >> kSlpTypShift) & kSlpTypMask) == m_s5_type) {
        if (m_power_off) {
            m_power_off();
        }
    } else if (offset == kReset && v == m_reset_value) {
        if (m_reset) {
            m_reset();
        }
    }
}

}  // namespace vireo
