#include "devices/legacy/cmos_rtc.h"

#include <algorithm>

namespace vireo {

namespace {

// Register indices (MC146818 datasheet; CMOS map of the IBM PC/AT).
constexpr std::uint8_t kSeconds = 0x00;
constexpr std::uint8_t kMinutes = 0x02;
constexpr std::uint8_t kHours = 0x04;
constexpr std::uint8_t kDayOfWeek = 0x06;
constexpr std::uint8_t kDayOfMonth = 0x07;
constexpr std::uint8_t kMonth = 0x08;
constexpr std::uint8_t kYear = 0x09;
constexpr std::uint8_t kStatusA = 0x0a;    // UIP bit 7; divider
constexpr std::uint8_t kStatusB = 0x0b;    // bit 2 DM (1 = binary), bit 1 24-hour
constexpr std::uint8_t kStatusC = 0x0c;    // interrupt flags, cleared on read
constexpr std::uint8_t kStatusD = 0x0d;    // bit 7 VRT: RAM and time valid
constexpr std::uint8_t kExtMemLow = 0x30;  // KiB above 1 MiB, up to 63 MiB
constexpr std::uint8_t kExtMemHigh = 0x31;
constexpr std::uint8_t kCentury = 0x32;
constexpr std::uint8_t kMem16MLow = 0x34;  // 64 KiB units above 16 MiB, below 4 GiB
constexpr std::uint8_t kMem16MHigh = 0x35;
constexpr std::uint8_t kMem4GLow = 0x5b;  // 64 KiB units above 4 GiB (3 bytes)

constexpr std::uint8_t kStatusBBinary = 0x04;
constexpr std::uint8_t kStatusB24h = 0x02;

std::uint8_t to_bcd(int v) {
    return static_cast<std::uint8_t>(((v / 10) << 4) | (v % 10));
}

}  // namespace

CmosRtc::CmosRtc(std::uint64_t low_memory, std::uint64_t high_memory,
                 std::function<std::time_t()> clock)
    : m_clock(std::move(clock)) {
    auto& r = m_s.ram;
    r[kStatusA] = 0x26;  // 32.768 kHz time base, 1024 Hz rate
    r[kStatusB] = kStatusB24h;
    r[kStatusD] = 0x80;
    const std::uint64_t mib = 1024 * 1024;
    const std::uint64_t ext_kib =
        std::min<std::uint64_t>(low_memory > mib ? (low_memory - mib) / 1024 : 0, 0xffff);
    r[kExtMemLow] = static_cast<std::uint8_t>(ext_kib);
    r[kExtMemHigh] = static_cast<std::uint8_t>(ext_kib >> 8);
    const std::uint64_t above16 = std::min<std::uint64_t>(
        low_memory > 16 * mib ? (low_memory - 16 * mib) / (64 * 1024) : 0, 0xffff);
    r[kMem16MLow] = static_cast<std::uint8_t>(above16);
    r[kMem16MHigh] = static_cast<std::uint8_t>(above16 >> 8);
    const std::uint64_t above4g = std::min<std::uint64_t>(high_memory / (64 * 1024), 0xffffff);
    r[kMem4GLow] = static_cast<std::uint8_t>(above4g);
    r[kMem4GLow + 1] = static_cast<std::uint8_t>(above4g >> 8);
    r[kMem4GLow + 2] = static_cast<std::uint8_t>(above4g >> 16);
}

std::uint8_t CmosRtc::read_register(std::uint8_t index) {
    if (index > kDayOfMonth + 2 && index != kCentury) {
        if (index == kStatusC) {
            const std::uint8_t v = m_s.ram[kStatusC];
            m_s.ram[kStatusC] = 0;
            return v;
        }
        return m_s.ram[index];
    }
    if (index != kSeconds && index != kMinutes && index != kHours && index != kDayOfWeek &&
        index != kDayOfMonth && index != kMonth && index != kYear && index != kCentury) {
        return m_s.ram[index];  // alarm registers
    }
    const std::time_t now = m_clock();
    std::tm tm{};
    gmtime_r(&now, &tm);
    int v = 0;
    switch (index) {
        case kSeconds:
            v = tm.tm_sec;
            break;
        case kMinutes:
            v = tm.tm_min;
            break;
        case kHours:
            v = tm.tm_hour;
            break;
        case kDayOfWeek:
            v = tm.tm_wday + 1;
            break;
        case kDayOfMonth:
            v = tm.tm_mday;
            break;
        case kMonth:
            v = tm.tm_mon + 1;
            break;
        case kYear:
            v = tm.tm_year % 100;
            break;
        case kCentury:
            v = (tm.tm_year + 1900) / 100;
            break;
        default:
            break;
    }
    return (m_s.ram[kStatusB] & kStatusBBinary) ? static_cast<std::uint8_t>(v) : to_bcd(v);
}

void CmosRtc::read(std::uint64_t offset, std::span<std::uint8_t> data) {
    std::lock_guard lock(m_mutex);
    std::fill(data.begin(), data.end(), 0xff);
    if (data.empty()) {
        return;
    }
    if (offset == 1) {
        // The update-in-progress flag (status A bit 7) stays clear: reads are never torn.
        data[0] = read_register(m_s.index);
    } else if (offset == 0) {
        data[0] = m_s.index;
    }
}

void CmosRtc::write(std::uint64_t offset, std::span<const std::uint8_t> data) {
    std::lock_guard lock(m_mutex);
    if (data.empty()) {
        return;
    }
    if (offset == 0) {
        m_s.index = data[0] & 0x7f;  // bit 7 masks NMI; nothing to mask here
    } else if (offset == 1) {
        const std::uint8_t idx = m_s.index;
        if (idx == kStatusC || idx == kStatusD) {
            return;  // read-only
        }
        if (idx == kStatusA) {
            m_s.ram[idx] = data[0] & 0x7f;  // UIP is read-only
            return;
        }
        // Writes to the clock registers are accepted but the clock keeps following the host.
        m_s.ram[idx] = data[0];
    }
}

CmosRtcState CmosRtc::save_state() const {
    std::lock_guard lock(m_mutex);
    return m_s;
}

void CmosRtc::restore_state(const CmosRtcState& s) {
    std::lock_guard lock(m_mutex);
    m_s = s;
    m_s.index &= 0x7f;
}

}  // namespace vireo
