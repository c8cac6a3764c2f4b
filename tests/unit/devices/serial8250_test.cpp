#include "devices/legacy/serial8250.h"

#include <string>

#include <gtest/gtest.h>

namespace vireo {
namespace {

struct FakeIrq final : IrqLine {
    bool level = false;
    int changes = 0;
    void set_level(bool high) override {
        level = high;
        ++changes;
    }
};

class Serial : public ::testing::Test {
protected:
    std::uint8_t in(std::uint64_t reg) {
        std::uint8_t b = 0;
        uart.read(reg, std::span(&b, 1));
        return b;
    }
    void out(std::uint64_t reg, std::uint8_t v) { uart.write(reg, std::span(&v, 1)); }

    FakeIrq irq;
    std::string output;
    Serial8250 uart{irq,
                    [this](std::span<const std::uint8_t> b) { output.append(b.begin(), b.end()); }};
};

TEST_F(Serial, TransmitsAndIsAlwaysReady) {
    for (char c : std::string("hi\n")) {
        EXPECT_TRUE(in(5) & 0x20);  // LSR.THRE
        out(0, static_cast<std::uint8_t>(c));
    }
    EXPECT_EQ(output, "hi\n");
    EXPECT_EQ(in(5) & 0x60, 0x60);
}

TEST_F(Serial, ThrEmptyInterruptRaisedOnEnableAndClearedByIirRead) {
    EXPECT_FALSE(irq.level);
    out(1, 0x02);  // IER.ETBEI
    EXPECT_TRUE(irq.level);
    EXPECT_EQ(in(2) & 0x0f, 0x02);  // IIR: THR empty; reading clears it
    EXPECT_FALSE(irq.level);
    EXPECT_EQ(in(2) & 0x0f, 0x01);  // no interrupt pending
    out(0, 'x');                    // the byte leaves at once: THRE interrupt again
    EXPECT_TRUE(irq.level);
}

TEST_F(Serial, ReceivedDataRaisesInterruptUntilDrained) {
    out(1, 0x01);  // IER.ERBFI
    const std::uint8_t bytes[] = {'a', 'b'};
    EXPECT_EQ(uart.queue_input(bytes), 2U);
    EXPECT_TRUE(irq.level);
    EXPECT_EQ(in(2) & 0x0f, 0x04);
    EXPECT_TRUE(in(5) & 0x01);
    EXPECT_EQ(in(0), 'a');
    EXPECT_TRUE(irq.level);
    EXPECT_EQ(in(0), 'b');
    EXPECT_FALSE(in(5) & 0x01);
    EXPECT_FALSE(irq.level);
}

TEST_F(Serial, InputBufferIsBounded) {
    std::vector<std::uint8_t> lots(Serial8250::kRxCapacity + 100, 'z');
    EXPECT_EQ(uart.queue_input(lots), Serial8250::kRxCapacity);
}

TEST_F(Serial, FifoIdentifiesAs16550A) {
    out(2, 0x07);  // enable and clear FIFOs
    EXPECT_EQ(in(2) & 0xc0, 0xc0);
}

TEST_F(Serial, LoopbackPassesLinuxProbe) {
    // Linux's autoconfig: MCR = LOOP | OUT2 | RTS must read MSR = DCD | CTS (0x90).
    out(4, 0x1a);
    EXPECT_EQ(in(6) & 0xf0, 0x90);
    out(0, 'q');
    EXPECT_TRUE(output.empty());
    EXPECT_EQ(in(0), 'q');
}

TEST_F(Serial, DivisorLatchAndScratch) {
    out(3, 0x80);
    out(0, 0x01);
    out(1, 0x00);
    EXPECT_EQ(in(0), 0x01);
    out(3, 0x03);
    EXPECT_EQ(in(1), 0x00);  // IER, not DLM
    out(7, 0x5a);
    EXPECT_EQ(in(7), 0x5a);
}

TEST_F(Serial, StateRoundTrips) {
    out(1, 0x01);
    const std::uint8_t b[] = {'k'};
    uart.queue_input(b);
    // Through the snapshot encoding, as a restore in a new process sees it.
    const auto s = load_from_bytes<Serial8250State>(save_to_bytes(uart.save_state())).value();
    FakeIrq irq2;
    Serial8250 copy(irq2, nullptr);
    copy.restore_state(s);
    EXPECT_TRUE(irq2.level);
    std::uint8_t got = 0;
    copy.read(0, std::span(&got, 1));
    EXPECT_EQ(got, 'k');
}

}  // namespace
}  // namespace vireo
