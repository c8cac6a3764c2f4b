// The soft VM's 8254 PIT: counter 0's interrupt times and their coalescing, the latch and
// read-back commands, counter 2 through port 0x61 as Linux's TSC calibration uses it, and the
// saved state (with malformed states refused). The whole platform path (IOAPIC pin 2, the BSP
// serving it) runs in tests/multiboot's mb_platform kernel.
#include <gtest/gtest.h>

#include <thread>

#include "accel/soft/soft_pit.h"

namespace vireo::soft::test {
namespace {

using namespace std::chrono_literals;

struct Pit {
    int pulses = 0;
    int rearms = 0;
    SoftPit pit{[this] { ++pulses; }, [this] { ++rearms; }};

    void out(std::uint16_t port, std::uint8_t v) {
        const std::uint8_t b[1] = {v};
        pit.pio_write(port, b);
    }
    std::uint8_t in(std::uint16_t port) {
        std::uint8_t b[1] = {0};
        pit.pio_read(port, b);
        return b[0];
    }
};

TEST(SoftPit, Mode2InterruptsEveryPeriodAndCoalescesMissedOnes) {
    Pit p;
    EXPECT_EQ(p.pit.next_deadline(), SoftPit::Clock::time_point::max());
    const auto before = SoftPit::Clock::now();
    p.out(0x43, 0x34);  // counter 0, LSB then MSB, mode 2
    p.out(0x40, 1193 & 0xff);
    EXPECT_EQ(p.rearms, 0);  // not loaded until the MSB
    p.out(0x40, 1193 >> 8);
    EXPECT_EQ(p.rearms, 1);
    const auto first = p.pit.next_deadline();
    // 1193 ticks at 1.193182 MHz: 999.8 us after the load.
    EXPECT_GE(first - before, 999us);
    EXPECT_LT(first - before, 999us + 200ms);
    p.pit.service(first - 1ns);
    EXPECT_EQ(p.pulses, 0);
    p.pit.service(first);
    EXPECT_EQ(p.pulses, 1);
    const auto second = p.pit.next_deadline();
    EXPECT_GE(second - first, 999us);
    EXPECT_LE(second - first, 1001us);
    // Ten seconds unseen: one edge, and the next one after that moment.
    p.pit.service(first + 10s);
    EXPECT_EQ(p.pulses, 2);
    EXPECT_GT(p.pit.next_deadline(), first + 10s);
    EXPECT_LE(p.pit.next_deadline(), first + 10s + 1001us);
    // A new control word stops the counter and its interrupts.
    p.out(0x43, 0x34);
    EXPECT_EQ(p.pit.next_deadline(), SoftPit::Clock::time_point::max());
}

TEST(SoftPit, Mode0InterruptsOnce) {
    Pit p;
    p.out(0x43, 0x30);  // counter 0, LSB then MSB, mode 0
    p.out(0x40, 0x00);
    p.out(0x40, 0x10);  // 4096 ticks
    const auto at = p.pit.next_deadline();
    ASSERT_NE(at, SoftPit::Clock::time_point::max());
    p.pit.service(at);
    EXPECT_EQ(p.pulses, 1);
    EXPECT_EQ(p.pit.next_deadline(), SoftPit::Clock::time_point::max());
    p.pit.service(at + 1s);
    EXPECT_EQ(p.pulses, 1);
}

TEST(SoftPit, LatchHoldsTheCountUntilRead) {
    Pit p;
    p.out(0x43, 0x34);
    p.out(0x40, 0xff);
    p.out(0x40, 0xff);  // 65535 ticks: 55 ms a period
    p.out(0x43, 0x00);  // latch counter 0
    std::this_thread::sleep_for(5ms);
    const unsigned lsb = p.in(0x40);
    const unsigned latched = lsb | (unsigned{p.in(0x40)} << 8);
    EXPECT_GT(latched, 0u);
    EXPECT_LE(latched, 0xffffu);
    // The live count has moved on by at least the 5 ms slept (5966 ticks) since the latch.
    const unsigned live = p.in(0x40) | (unsigned{p.in(0x40)} << 8);
    EXPECT_LT(live, latched);
    EXPECT_GE(latched - live, 5900u);
}

TEST(SoftPit, ReadBackGivesStatusThenCount) {
    Pit p;
    p.out(0x43, 0x34);
    // Before the count is written: NULL COUNT (bit 6) is set.
    p.out(0x43, 0xe2);  // read-back, status only, counter 0
    EXPECT_EQ(p.in(0x40) & 0x7f, 0x40 | 0x34);
    p.out(0x40, 0x00);
    p.out(0x40, 0x80);                   // 32768
    p.out(0x43, 0xc2);                   // read-back, count and status, counter 0
    EXPECT_EQ(p.in(0x40) & 0x7f, 0x34);  // mode 2, LSB/MSB, count loaded
    const unsigned count = p.in(0x40) | (unsigned{p.in(0x40)} << 8);
    EXPECT_GE(count, 1u);
    EXPECT_LE(count, 0x8000u);
}

// Linux's pit_calibrate_tsc/pit_hpet_ptimer_calibrate_cpu: gate counter 2 on through port 0x61,
// mode 0, and poll OUT (port 0x61 bit 5) until terminal count.
TEST(SoftPit, Counter2OutputThroughPort61) {
    Pit p;
    p.out(0x61, (p.in(0x61) & ~0x02) | 0x01);
    p.out(0x43, 0xb0);  // counter 2, LSB then MSB, mode 0
    p.out(0x42, 0x9c);
    p.out(0x42, 0x2e);  // 11932 ticks: 10 ms
    EXPECT_EQ(p.in(0x61) & 0x20, 0);
    EXPECT_EQ(p.in(0x61) & 0x01, 0x01);  // the gate as written
    std::this_thread::sleep_for(15ms);
    EXPECT_EQ(p.in(0x61) & 0x20, 0x20);
    // Bit 4 toggles from read to read (code that waits on the refresh clock moves on).
    EXPECT_NE(p.in(0x61) & 0x10, p.in(0x61) & 0x10);
    EXPECT_EQ(p.pulses, 0);  // counter 2 is not an interrupt source
}

TEST(SoftPit, SavedStateGoesOnAfterRestore) {
    Pit a;
    a.out(0x43, 0x34);
    a.out(0x40, 1193 & 0xff);
    a.out(0x40, 1193 >> 8);
    const auto bytes = a.pit.save();
    Pit b;
    ASSERT_TRUE(b.pit.restore(bytes));
    const auto next = b.pit.next_deadline();
    ASSERT_NE(next, SoftPit::Clock::time_point::max());
    EXPECT_LE(next - SoftPit::Clock::now(), 1001us);
    b.pit.service(next);
    EXPECT_EQ(b.pulses, 1);
    // An empty state (a snapshot from before the soft PIT) leaves the PIT idle.
    Pit c;
    ASSERT_TRUE(c.pit.restore({}));
    EXPECT_EQ(c.pit.next_deadline(), SoftPit::Clock::time_point::max());
}

TEST(SoftPit, MalformedSavedStateIsRefusedAndChangesNothing) {
    Pit a;
    a.out(0x43, 0x34);
    a.out(0x40, 0x00);
    a.out(0x40, 0x10);
    const auto good = a.pit.save();
    const auto before = a.pit.next_deadline();
    auto bad = good;
    bad.pop_back();
    EXPECT_FALSE(a.pit.restore(bad));  // truncated
    bad = good;
    bad[0] = 99;
    EXPECT_FALSE(a.pit.restore(bad));  // unknown version
    bad = good;
    bad[4 + 4] = 9;  // counter 0's mode
    EXPECT_FALSE(a.pit.restore(bad));
    bad = good;
    bad[4] = bad[5] = bad[6] = bad[7] = 0;  // counter 0's count 0
    EXPECT_FALSE(a.pit.restore(bad));
    bad = good;
    bad[4 + 5] = 0;  // access mode 0
    EXPECT_FALSE(a.pit.restore(bad));
    EXPECT_EQ(a.pit.next_deadline(), before);
    // Ticks far beyond any real run are taken by their phase, without overflow.
    bad = good;
    for (int i = 0; i < 8; ++i) {
        bad[4 + 24 + i] = 0xff;
    }
    EXPECT_TRUE(a.pit.restore(bad));
    EXPECT_NE(a.pit.next_deadline(), SoftPit::Clock::time_point::max());
}

}  // namespace
}  // namespace vireo::soft::test
