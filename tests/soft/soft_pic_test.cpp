// The soft VM's 8259A pair: initialisation, masking, edge requests, the acknowledge cycle's
// vectors (cascade included), fixed priority against what is in service, EOI, the IRR/ISR reads,
// the spurious IR7, and the saved state (malformed states refused). The whole path (the BSP's
// LINT0 in ExtINT mode, the PIT on IR0) runs in tests/multiboot's mb_platform kernel.
#include <gtest/gtest.h>

#include "accel/soft/soft_pic.h"

namespace vireo::soft::test {
namespace {

struct Pic {
    int wakes = 0;
    SoftPic pic{[this] { ++wakes; }};

    void out(std::uint16_t port, std::uint8_t v) {
        const std::uint8_t b[1] = {v};
        pic.pio_write(port, b);
    }
    std::uint8_t in(std::uint16_t port) {
        std::uint8_t b[1] = {0};
        pic.pio_read(port, b);
        return b[0];
    }
    // ICW1-4 as Linux and the BIOS do: edge, cascade, ICW4; bases 0x20 and 0x28.
    void init() {
        out(0x20, 0x11);
        out(0xa0, 0x11);
        out(0x21, 0x20);
        out(0xa1, 0x28);
        out(0x21, 0x04);
        out(0xa1, 0x02);
        out(0x21, 0x01);
        out(0xa1, 0x01);
    }
    void pulse(unsigned irq) {
        pic.set_irq(irq, true);
        pic.set_irq(irq, false);
    }
};

TEST(SoftPic, StartsMaskedAndInitialisationUnmasks) {
    Pic p;
    p.pulse(0);
    EXPECT_FALSE(p.pic.output());  // masked until initialised, as vireo's KVM PIC
    EXPECT_EQ(p.in(0x21), 0xff);
    p.init();
    EXPECT_EQ(p.in(0x21), 0x00);  // ICW1 clears the mask
    p.pulse(0);
    EXPECT_TRUE(p.pic.output());
    EXPECT_GE(p.wakes, 1);
    EXPECT_EQ(p.pic.acknowledge(), 0x20);
}

TEST(SoftPic, MaskPriorityAndEoi) {
    Pic p;
    p.init();
    p.out(0x21, 0xfe);  // only IR0
    p.pulse(1);
    EXPECT_FALSE(p.pic.output());
    p.pulse(0);
    ASSERT_TRUE(p.pic.output());
    EXPECT_EQ(p.pic.acknowledge(), 0x20);
    // IR0 in service: another IR0 edge waits for its EOI.
    p.pulse(0);
    EXPECT_FALSE(p.pic.output());
    p.out(0x20, 0x0b);  // OCW3: read ISR
    EXPECT_EQ(p.in(0x20), 0x01);
    p.out(0x20, 0x0a);            // OCW3: read IRR
    EXPECT_EQ(p.in(0x20), 0x03);  // IR0 again, and the masked IR1
    p.out(0x20, 0x20);            // non-specific EOI
    EXPECT_TRUE(p.pic.output());
    EXPECT_EQ(p.pic.acknowledge(), 0x20);
    // Unmasking IR1 with IR0 in service: IR1 is lower priority, it waits.
    p.out(0x21, 0xfc);
    EXPECT_FALSE(p.pic.output());
    p.out(0x20, 0x60);  // specific EOI for IR0
    ASSERT_TRUE(p.pic.output());
    EXPECT_EQ(p.pic.acknowledge(), 0x21);
}

TEST(SoftPic, SlaveThroughTheCascade) {
    Pic p;
    p.init();
    p.pulse(12);  // slave IR4
    ASSERT_TRUE(p.pic.output());
    EXPECT_EQ(p.pic.acknowledge(), 0x2c);
    p.out(0x20, 0x0b);
    EXPECT_EQ(p.in(0x20), 0x04);  // master IR2 in service
    p.out(0xa0, 0x0b);
    EXPECT_EQ(p.in(0xa0), 0x10);
    p.pulse(2);  // the cascade input itself is not a device line
    p.out(0xa0, 0x20);
    p.out(0x20, 0x20);
    EXPECT_FALSE(p.pic.output());
}

TEST(SoftPic, SpuriousWhenTheRequestIsGone) {
    Pic p;
    p.init();
    EXPECT_EQ(p.pic.acknowledge(), 0x27);  // no request: IR7 of the master
}

TEST(SoftPic, AutoEoi) {
    Pic p;
    p.out(0x20, 0x11);
    p.out(0x21, 0x40);
    p.out(0x21, 0x04);
    p.out(0x21, 0x03);  // ICW4: 8086 mode, auto-EOI
    p.pulse(3);
    EXPECT_EQ(p.pic.acknowledge(), 0x43);
    p.out(0x20, 0x0b);
    EXPECT_EQ(p.in(0x20), 0x00);  // nothing left in service
}

TEST(SoftPic, SavedStateRoundTripsAndMalformedIsRefused) {
    Pic a;
    a.init();
    a.out(0x21, 0xfa);
    a.pulse(0);
    const auto master = a.pic.save(0);
    const auto slave = a.pic.save(1);
    Pic b;
    ASSERT_TRUE(b.pic.restore(0, master));
    ASSERT_TRUE(b.pic.restore(1, slave));
    EXPECT_EQ(b.in(0x21), 0xfa);
    ASSERT_TRUE(b.pic.output());
    EXPECT_EQ(b.pic.acknowledge(), 0x20);
    auto bad = master;
    bad.pop_back();
    EXPECT_FALSE(b.pic.restore(0, bad));
    bad = master;
    bad[0] = 7;  // version
    EXPECT_FALSE(b.pic.restore(0, bad));
    bad = master;
    bad[6] = 9;  // initialisation step
    EXPECT_FALSE(b.pic.restore(0, bad));
    EXPECT_EQ(b.in(0x21), 0xfa);  // unchanged by the refusals
    // Empty (a snapshot from before the soft PIC): masked.
    ASSERT_TRUE(b.pic.restore(0, {}));
    EXPECT_EQ(b.in(0x21), 0xff);
}

}  // namespace
}  // namespace vireo::soft::test
