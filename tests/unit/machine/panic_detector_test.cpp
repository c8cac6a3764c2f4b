#include "machine/panic_detector.h"

#include <string_view>

#include <gtest/gtest.h>

namespace vireo {
namespace {

void feed(PanicDetector& d, std::string_view s) {
    d.feed(std::span(reinterpret_cast<const std::uint8_t*>(s.data()), s.size()));
}

TEST(PanicDetector, FindsThePanicLineAcrossChunks) {
    PanicDetector d;
    feed(d, "[    1.0] Run /init as init process\r\n[    1.1] Kernel pa");
    EXPECT_FALSE(d.panic());
    feed(d, "nic - not syncing: No working init found.\r\n");
    auto p = d.panic();
    ASSERT_TRUE(p);
    EXPECT_EQ(p->reason, "No working init found.");
    EXPECT_FALSE(p->report_complete);
    feed(d, "---[ end Kernel panic - not syncing: No working init found. ]---\r\n");
    EXPECT_TRUE(d.panic()->report_complete);
}

TEST(PanicDetector, OrdinaryOutputIsNotAPanic) {
    PanicDetector d;
    feed(d, "panic=-1 on the command line\nKernel panic is a phrase\n");
    EXPECT_FALSE(d.panic());
}

TEST(PanicDetector, LongLinesAreBounded) {
    PanicDetector d;
    std::string junk(100000, 'x');
    feed(d, junk);
    feed(d, "\n");
    EXPECT_FALSE(d.panic());
}

}  // namespace
}  // namespace vireo
