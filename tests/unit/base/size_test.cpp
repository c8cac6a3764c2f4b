#include "base/size.h"

#include <gtest/gtest.h>

namespace vireo {
namespace {

TEST(ParseSize, Suffixes) {
    EXPECT_EQ(*parse_size("512M"), 512 * MiB);
    EXPECT_EQ(*parse_size("2G"), 2 * GiB);
    EXPECT_EQ(*parse_size("2g"), 2 * GiB);
    EXPECT_EQ(*parse_size("64KiB"), 64 * KiB);
    EXPECT_EQ(*parse_size("1T"), 1024 * GiB);
    EXPECT_EQ(*parse_size("4096B"), 4096U);
    EXPECT_EQ(*parse_size("3MB"), 3 * MiB);
}

TEST(ParseSize, BareNumberUsesDefaultUnit) {
    EXPECT_EQ(*parse_size("128"), 128 * MiB);
    EXPECT_EQ(*parse_size("128", 1), 128U);
}

TEST(ParseSize, RejectsJunkZeroAndOverflow) {
    for (const char* bad : {"", "M", "-1G", "12Q", "1.5G", "0", "0M", "1GiBx", " 1G", "1 G",
                            "18446744073709551616", "17179869184G"}) {
        auto r = parse_size(bad);
        ASSERT_FALSE(r.ok()) << bad;
        EXPECT_NE(r.error().message().find("invalid size"), std::string::npos) << bad;
    }
}

TEST(FormatSize, PicksLargestExactUnit) {
    EXPECT_EQ(format_size(512 * MiB), "512 MiB");
    EXPECT_EQ(format_size(4 * GiB), "4 GiB");
    EXPECT_EQ(format_size(1536 * KiB), "1536 KiB");
    EXPECT_EQ(format_size(100), "100 B");
}

}  // namespace
}  // namespace vireo
