#include "bus/io_bus.h"

#include <gtest/gtest.h>

namespace vireo {
namespace {

struct Recorder final : BusDevice {
    std::uint64_t last_offset = ~0ULL;
    void read(std::uint64_t offset, std::span<std::uint8_t> data) override {
        last_offset = offset;
        for (auto& b : data) {
            b = static_cast<std::uint8_t>(offset);
        }
    }
    void write(std::uint64_t offset, std::span<const std::uint8_t>) override {
        last_offset = offset;
    }
};

TEST(IoBus, DevicesSeeOffsetsNotAddresses) {
    IoBus bus;
    auto dev = std::make_shared<Recorder>();
    ASSERT_TRUE(bus.insert(0x3f8, 8, dev, "uart").ok());
    std::uint8_t b[1];
    EXPECT_TRUE(bus.read(0x3fd, b));
    EXPECT_EQ(dev->last_offset, 5U);
    EXPECT_EQ(b[0], 5);
    const std::uint8_t w[1] = {0};
    EXPECT_TRUE(bus.write(0x3f8, w));
    EXPECT_EQ(dev->last_offset, 0U);
}

TEST(IoBus, UnclaimedAndStraddlingAccessesAreRefused) {
    IoBus bus;
    ASSERT_TRUE(bus.insert(0x60, 5, std::make_shared<Recorder>(), "i8042").ok());
    std::uint8_t d4[4];
    std::uint8_t d1[1];
    EXPECT_FALSE(bus.read(0x5f, d1));
    EXPECT_FALSE(bus.read(0x65, d1));
    EXPECT_FALSE(bus.read(0x63, d4));  // runs past 0x64
    EXPECT_TRUE(bus.read(0x60, d4));
}

TEST(IoBus, OverlapsAreRejected) {
    IoBus bus;
    auto d = std::make_shared<Recorder>();
    ASSERT_TRUE(bus.insert(0x100, 0x10, d, "a").ok());
    EXPECT_FALSE(bus.insert(0x10f, 1, d, "b").ok());
    EXPECT_FALSE(bus.insert(0xf8, 0x10, d, "c").ok());
    EXPECT_FALSE(bus.insert(0x0, 0x1000, d, "d").ok());
    EXPECT_FALSE(bus.insert(0x200, 0, d, "empty").ok());
    EXPECT_FALSE(bus.insert(~0ULL - 1, 4, d, "wrap").ok());
    EXPECT_TRUE(bus.insert(0x110, 1, d, "adjacent").ok());
    EXPECT_TRUE(bus.insert(0xff, 1, d, "adjacent below").ok());
}

}  // namespace
}  // namespace vireo
