#include <gtest/gtest.h>

#include "devices/legacy/acpi_pm.h"
#include "devices/legacy/cmos_rtc.h"

namespace vireo {
namespace {

std::uint8_t in(BusDevice& d, std::uint64_t off) {
    std::uint8_t b = 0;
    d.read(off, std::span(&b, 1));
    return b;
}
void out(BusDevice& d, std::uint64_t off, std::uint8_t v) {
    d.write(off, std::span(&v, 1));
}

TEST(CmosRtc, ReportsTimeInBcdAndMemorySizes) {
    // 2026-11-29 01:02:03 UTC, a Sunday.
    CmosRtc rtc(512ULL << 20, 1ULL << 30, [] { return std::time_t{1795914123}; });
    auto reg = [&](std::uint8_t i) {
        out(rtc, 0, i);
        return in(rtc, 1);
    };
    EXPECT_EQ(reg(0x00), 0x03);
    EXPECT_EQ(reg(0x02), 0x02);
    EXPECT_EQ(reg(0x04), 0x01);
    EXPECT_EQ(reg(0x07), 0x29);
    EXPECT_EQ(reg(0x08), 0x11);
    EXPECT_EQ(reg(0x09), 0x26);
    EXPECT_EQ(reg(0x32), 0x20);
    EXPECT_EQ(reg(0x0a) & 0x80, 0);  // never update-in-progress
    EXPECT_EQ(reg(0x0d), 0x80);
    // (512 MiB - 16 MiB) / 64 KiB = 7936 = 0x1f00; 1 GiB / 64 KiB = 0x4000.
    EXPECT_EQ(reg(0x34), 0x00);
    EXPECT_EQ(reg(0x35), 0x1f);
    EXPECT_EQ(reg(0x5b), 0x00);
    EXPECT_EQ(reg(0x5c), 0x40);
    // Binary mode on request.
    out(rtc, 0, 0x0b);
    out(rtc, 1, 0x06);
    EXPECT_EQ(reg(0x07), 29);
    // Index port masks the NMI bit.
    out(rtc, 0, 0x80 | 0x09);
    EXPECT_EQ(in(rtc, 1), 26);
}

TEST(AcpiPm, S5PowersOffAndResetRegisterResets) {
    int offs = 0, resets = 0;
    AcpiPm pm(
        5, 1, [&] { ++offs; }, [&] { ++resets; });
    out(pm, AcpiPm::kSleepControl, (5 << 2));  // SLP_EN missing: nothing
    EXPECT_EQ(offs, 0);
    out(pm, AcpiPm::kSleepControl, (3 << 2) | 0x20);  // S3 not supported: nothing
    EXPECT_EQ(offs, 0);
    out(pm, AcpiPm::kSleepControl, (5 << 2) | 0x20);
    EXPECT_EQ(offs, 1);
    out(pm, AcpiPm::kReset, 2);
    EXPECT_EQ(resets, 0);
    out(pm, AcpiPm::kReset, 1);
    EXPECT_EQ(resets, 1);
    EXPECT_EQ(in(pm, AcpiPm::kSleepStatus), 0);
}

}  // namespace
}  // namespace vireo
