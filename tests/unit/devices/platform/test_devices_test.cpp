// The devices test kernels expect from QEMU: isa-debug-exit (devices/platform/debug_exit.h) and
// fw_cfg's I/O ports (devices/platform/fw_cfg.h).
#include <gtest/gtest.h>

#include <array>
#include <vector>

#include "devices/platform/debug_exit.h"
#include "devices/platform/fw_cfg.h"

namespace vireo {
namespace {

TEST(DebugExit, ExitsWithTheValueShiftedAndOred) {
    std::vector<std::uint64_t> got;
    DebugExit dev([&](std::uint64_t s) { got.push_back(s); });
    const std::array<std::uint8_t, 4> zero{0, 0, 0, 0};
    const std::array<std::uint8_t, 4> word{0x34, 0x12, 0, 0};
    const std::array<std::uint8_t, 1> byte{0x7f};
    dev.write(0, zero);
    dev.write(0, word);
    dev.write(2, byte);  // any offset of the range, any width
    EXPECT_EQ(got, (std::vector<std::uint64_t>{1, 0x2469, 0xff}));
    const std::array<std::uint8_t, 8> wide{};
    dev.write(0, wide);  // not an I/O port access: ignored
    EXPECT_EQ(got.size(), 3U);
    std::array<std::uint8_t, 4> in{};
    dev.read(0, in);
    EXPECT_EQ(in, (std::array<std::uint8_t, 4>{0xff, 0xff, 0xff, 0xff}));
}

std::vector<std::uint8_t> read_item(FwCfg& dev, std::uint16_t key, std::size_t n) {
    const std::array<std::uint8_t, 2> sel{static_cast<std::uint8_t>(key),
                                          static_cast<std::uint8_t>(key >> 8)};
    dev.write(0, sel);
    std::vector<std::uint8_t> out(n);
    for (auto& b : out) {
        std::array<std::uint8_t, 1> d{};
        dev.read(1, d);
        b = d[0];
    }
    return out;
}

TEST(FwCfg, AnswersTheKeysTestKernelsRead) {
    FwCfg dev(3, 64ULL << 20);
    EXPECT_EQ(read_item(dev, FwCfg::kSignature, 4),
              (std::vector<std::uint8_t>{'Q', 'E', 'M', 'U'}));
    EXPECT_EQ(read_item(dev, FwCfg::kNbCpus, 3), (std::vector<std::uint8_t>{3, 0, 0}));  // then 0
    EXPECT_EQ(read_item(dev, FwCfg::kMaxCpus, 2), (std::vector<std::uint8_t>{3, 0}));
    EXPECT_EQ(read_item(dev, FwCfg::kRamSize, 8),
              (std::vector<std::uint8_t>{0, 0, 0, 4, 0, 0, 0, 0}));
    EXPECT_EQ(read_item(dev, FwCfg::kId, 4), (std::vector<std::uint8_t>{1, 0, 0, 0}));
    EXPECT_EQ(read_item(dev, 0x4242, 4), (std::vector<std::uint8_t>(4, 0)));  // unknown key
    // Selecting again rewinds; a wide data read takes several bytes; the selector reads 0.
    const std::array<std::uint8_t, 2> sel{FwCfg::kSignature, 0};
    dev.write(0, sel);
    std::array<std::uint8_t, 2> two{};
    dev.read(1, two);
    EXPECT_EQ(two, (std::array<std::uint8_t, 2>{'Q', 'E'}));
    dev.read(0, two);
    EXPECT_EQ(two, (std::array<std::uint8_t, 2>{0, 0}));
    // A write to the data port changes nothing.
    const std::array<std::uint8_t, 1> junk{0x99};
    dev.write(1, junk);
    std::array<std::uint8_t, 1> next{};
    dev.read(1, next);
    EXPECT_EQ(next[0], 'M');
}

}  // namespace
}  // namespace vireo
