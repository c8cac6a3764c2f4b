// The i8042 as Linux's i8042 and atkbd drivers drive it (drivers/input/serio/i8042.c,
// drivers/input/keyboard/atkbd.c, drivers/input/serio/libps2.c): the probe sequences as they
// happen, keyboard command answers, IRQ 1 against OBF and the command byte, Ctrl-Alt-Del.
#include "devices/legacy/i8042.h"

#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace vireo {
namespace {

constexpr std::uint64_t kData = 0;
constexpr std::uint64_t kStatus = 4;
constexpr std::uint8_t kObf = 0x01, kIbf = 0x02, kKeylockOff = 0x10, kAuxData = 0x20;
constexpr std::uint8_t kCtrKbdInt = 0x01, kCtrAuxInt = 0x02, kCtrKbdDis = 0x10, kCtrAuxDis = 0x20,
                       kCtrXlate = 0x40;

struct RecordingIrq final : IrqLine {
    bool level = false;
    int rises = 0;
    void set_level(bool high) override {
        if (high && !level) {
            ++rises;
        }
        level = high;
    }
};

struct Received {
    std::uint8_t byte;
    bool aux;
    bool operator==(const Received&) const = default;
};

// A guest driver built the way Linux's is: i8042_command() polls status and data with the
// interrupt masked; keyboard bytes arrive through i8042_interrupt() on IRQ 1.
class I8042Test : public ::testing::Test {
protected:
    std::uint8_t in(std::uint64_t port) {
        std::uint8_t b = 0;
        kbc.read(port, std::span(&b, 1));
        return b;
    }
    void out(std::uint64_t port, std::uint8_t v) { kbc.write(port, std::span(&v, 1)); }

    // i8042_wait_write / i8042_wait_read, with Linux's bound (I8042_CTL_TIMEOUT).
    void wait_write() {
        for (int i = 0; i < 10000; ++i) {
            if (!(in(kStatus)&kIbf)) {
                return;
            }
        }
        FAIL() << "IBF stuck";
    }
    bool wait_read() {
        for (int i = 0; i < 10000; ++i) {
            if (in(kStatus)&kObf) {
                return true;
            }
        }
        return false;
    }

    // __i8042_command(): command, parameters, then `replies` bytes read by polling.
    std::vector<std::uint8_t> command(std::uint8_t cmd, std::vector<std::uint8_t> params = {},
                                      int replies = 0) {
        wait_write();
        out(kStatus, cmd);
        for (std::uint8_t p : params) {
            wait_write();
            out(kData, p);
        }
        std::vector<std::uint8_t> r;
        for (int i = 0; i < replies; ++i) {
            EXPECT_TRUE(wait_read()) << "no reply to command " << int{cmd};
            if (cmd == 0xd3) {
                EXPECT_TRUE(in(kStatus)&kAuxData) << "AUX loopback reply without AUXDATA";
            }
            r.push_back(in(kData));
        }
        return r;
    }
    std::uint8_t read_ctr() { return command(0x20, {}, 1).at(0); }
    void write_ctr(std::uint8_t ctr) { command(0x60, {ctr}); }

    // i8042_flush(): at most I8042_BUFFER_SIZE bytes, else "No controller found".
    std::vector<Received> flush() {
        std::vector<Received> r;
        for (std::uint8_t st = in(kStatus); st & kObf; st = in(kStatus)) {
            EXPECT_LT(r.size(), 16U) << "flush never ends";
            if (r.size() >= 16) {
                break;
            }
            r.push_back({in(kData), (st & kAuxData) != 0});
        }
        return r;
    }

    // i8042_interrupt(), run while IRQ 1 is high (the guest's handler after each edge).
    void service_irq() {
        int guard = 0;
        while (irq.level && guard++ < 1000) {
            const std::uint8_t st = in(kStatus);
            ASSERT_TRUE(st & kObf) << "IRQ 1 high with an empty output buffer";
            ASSERT_FALSE(st & kAuxData) << "IRQ 1 for AUX data";
            rx.push_back(in(kData));
        }
    }

    // ps2_command(): each byte written to the keyboard is acknowledged (through IRQ 1), then the
    // command's answer bytes arrive.
    std::vector<std::uint8_t> ps2_command(std::vector<std::uint8_t> bytes, std::size_t answer = 0) {
        rx.clear();
        for (std::uint8_t b : bytes) {
            wait_write();
            out(kData, b);
            service_irq();
        }
        EXPECT_EQ(rx.size(), bytes.size() + answer);
        for (std::size_t i = 0; i < bytes.size() && i < rx.size(); ++i) {
            EXPECT_EQ(rx[i], 0xfa) << "no ACK for byte " << i;
        }
        if (rx.size() < bytes.size()) {
            return {};
        }
        return {rx.begin() + static_cast<std::ptrdiff_t>(bytes.size()), rx.end()};
    }

    // i8042_controller_check() + i8042_controller_init() + i8042_setup_kbd(): the probe every
    // configuration runs; returns the CTR the driver ends up with.
    std::uint8_t probe_controller() {
        EXPECT_TRUE(flush().empty());
        std::uint8_t ctr = read_ctr();
        EXPECT_EQ(read_ctr(), ctr) << "unstable CTR";
        ctr |= kCtrKbdDis;
        ctr &= static_cast<std::uint8_t>(~kCtrKbdInt);
        EXPECT_TRUE(in(kStatus)&kKeylockOff) << "Linux would warn: Keylock active";
        write_ctr(ctr);
        EXPECT_TRUE(flush().empty());
        return ctr;
    }
    void setup_kbd(std::uint8_t& ctr) {
        ctr &= static_cast<std::uint8_t>(~kCtrKbdDis);
        ctr |= kCtrKbdInt;
        write_ctr(ctr);
        EXPECT_EQ(read_ctr(), ctr);
    }
    // Reads the pending key bytes through the interrupt handler. The line is already high for the
    // first one (raised when the keys were queued); each later byte must be a new rising edge.
    void expect_keys(const std::vector<std::uint8_t>& want) {
        ASSERT_TRUE(irq.level);
        const int rises_before = irq.rises - 1;
        rx.clear();
        service_irq();
        EXPECT_EQ(rx, want);
        EXPECT_EQ(irq.rises - rises_before, static_cast<int>(want.size()))
            << "every byte must be its own edge on IRQ 1";
        EXPECT_FALSE(irq.level);
        EXPECT_FALSE(in(kStatus)&kObf);
    }

    const std::vector<std::uint8_t> set1_cad{0x1d, 0x38, 0xe0, 0x53, 0xe0, 0xd3, 0xb8, 0x9d};
    const std::vector<std::uint8_t> set2_cad{0x14, 0x11, 0xe0, 0x71, 0xe0, 0xf0,
                                             0x71, 0xf0, 0x11, 0xf0, 0x14};
    const std::vector<std::uint8_t> set3_cad{0x11, 0x19, 0x64, 0xf0, 0x64, 0xf0, 0x19, 0xf0, 0x11};

    RecordingIrq irq;
    int resets = 0;
    I8042 kbc{irq, [this] { ++resets; }};
    std::vector<std::uint8_t> rx;
};

// Firecracker's boot arguments: i8042.noaux i8042.nomux i8042.nopnp i8042.dumbkbd. atkbd then
// sends the keyboard nothing and assumes translated set 2.
TEST_F(I8042Test, LinuxProbeWithFirecrackerOptions) {
    std::uint8_t ctr = probe_controller();
    EXPECT_TRUE(ctr & kCtrXlate) << "Linux would switch to i8042.direct";
    setup_kbd(ctr);
    EXPECT_FALSE(irq.level);
    ASSERT_TRUE(kbc.send_ctrl_alt_del());
    EXPECT_TRUE(irq.level);
    expect_keys(set1_cad);
    EXPECT_EQ(resets, 0);
}

// Only i8042.nopnp: the AUX probe finds a controller-level loopback but no AUX IRQ and gives up;
// atkbd probes the keyboard with commands.
TEST_F(I8042Test, LinuxFullProbeFindsKeyboardAndNoAux) {
    std::uint8_t ctr = probe_controller();

    // i8042_check_aux(): loopback, then the AUXDIS bit toggles with 0xa7/0xa8.
    EXPECT_TRUE(flush().empty());
    EXPECT_EQ(command(0xd3, {0x5a}, 1), std::vector<std::uint8_t>{0x5a});
    command(0xa7);
    EXPECT_TRUE(read_ctr() & kCtrAuxDis);
    command(0xa8);
    EXPECT_FALSE(read_ctr() & kCtrAuxDis);
    // The AUX IRQ delivery test: enable the AUX port, loop a byte back, wait for IRQ 12. Nothing
    // comes (there is no IRQ 12, and IRQ 1 must stay quiet for AUX data): flush and give up.
    ctr &= static_cast<std::uint8_t>(~kCtrAuxDis);
    ctr |= kCtrAuxInt;
    write_ctr(ctr);
    command(0xd3, {0xa5});
    EXPECT_FALSE(irq.level);
    EXPECT_EQ(flush(), (std::vector<Received>{{0xa5, true}}));
    ctr |= kCtrAuxDis;
    ctr &= static_cast<std::uint8_t>(~kCtrAuxInt);
    write_ctr(ctr);

    setup_kbd(ctr);
    // atkbd_probe(): GETID (translated ID), deactivate; atkbd_select_set(): translated -> set 2;
    // atkbd_reset_state(): LEDs off, fastest repeat; atkbd_activate().
    EXPECT_EQ(ps2_command({0xf2}, 2), (std::vector<std::uint8_t>{0xab, 0x41}));
    ps2_command({0xf5});
    EXPECT_FALSE(kbc.send_ctrl_alt_del()) << "scanning is off";
    ps2_command({0xed, 0x00});
    ps2_command({0xf3, 0x00});
    ps2_command({0xf4});
    EXPECT_EQ(kbc.save_state().kbd_typematic, 0);

    ASSERT_TRUE(kbc.send_ctrl_alt_del());
    expect_keys(set1_cad);
    // Later LED changes (atkbd_event_work) still work.
    ps2_command({0xed, 0x04});
    EXPECT_EQ(kbc.save_state().kbd_leds, 0x04);
}

// i8042.direct (or a BIOS that left translation off): raw set 2, and atkbd may pick set 3.
TEST_F(I8042Test, UntranslatedSetsTwoAndThree) {
    std::uint8_t ctr = probe_controller() & static_cast<std::uint8_t>(~kCtrXlate);
    setup_kbd(ctr);
    EXPECT_EQ(ps2_command({0xf2}, 2), (std::vector<std::uint8_t>{0xab, 0x83}));
    EXPECT_EQ(ps2_command({0xf0, 0x00}, 1), std::vector<std::uint8_t>{0x02});
    ASSERT_TRUE(kbc.send_ctrl_alt_del());
    expect_keys(set2_cad);
    ps2_command({0xf0, 0x03});
    EXPECT_EQ(ps2_command({0xf0, 0x00}, 1), std::vector<std::uint8_t>{0x03});
    ASSERT_TRUE(kbc.send_ctrl_alt_del());
    expect_keys(set3_cad);
    ps2_command({0xf0, 0x01});
    ASSERT_TRUE(kbc.send_ctrl_alt_del());
    expect_keys(set1_cad);
}

TEST_F(I8042Test, TranslatedScanSetQuery) {
    std::uint8_t ctr = probe_controller();
    setup_kbd(ctr);
    EXPECT_EQ(ps2_command({0xf0, 0x00}, 1), std::vector<std::uint8_t>{0x41});  // set 2
}

TEST_F(I8042Test, KeyboardResetEchoAndOtherCommands) {
    std::uint8_t ctr = probe_controller();
    setup_kbd(ctr);
    ASSERT_TRUE(kbc.send_ctrl_alt_del());
    EXPECT_EQ(in(kData), 0x1d);  // one key byte taken; the reset drops the rest
    ASSERT_TRUE(irq.level);
    rx.clear();
    out(kData, 0xff);
    service_irq();
    EXPECT_EQ(rx, (std::vector<std::uint8_t>{0xfa, 0xaa}));  // ACK, BAT passed
    EXPECT_TRUE(kbc.save_state().kbd_keys.empty());
    rx.clear();
    out(kData, 0xee);
    service_irq();
    EXPECT_EQ(rx, std::vector<std::uint8_t>{0xee});  // echo: no ACK
    for (std::uint8_t unknown : {0xfe, 0xf7, 0xfa, 0x00, 0x42}) {
        ps2_command({unknown});  // resend, set-3 key types, garbage: acknowledged
    }
    ps2_command({0xf6});
    EXPECT_TRUE(kbc.save_state().kbd_scanning);
}

TEST_F(I8042Test, IrqFollowsOutputBufferAndCommandByte) {
    // Power-on CTR 0x45: keyboard interrupt enabled, so queued keys raise IRQ 1 at once.
    ASSERT_TRUE(kbc.send_ctrl_alt_del());
    EXPECT_TRUE(irq.level);
    EXPECT_TRUE(in(kStatus)&kObf);
    // Keyboard interrupt off: data stays readable by polling, the line drops.
    write_ctr(0x44);
    EXPECT_FALSE(irq.level);
    EXPECT_TRUE(in(kStatus)&kObf);
    EXPECT_EQ(in(kData), 0x1d);
    EXPECT_FALSE(irq.level);
    // Keyboard interface disabled (0xad): the keyboard holds its bytes, no OBF, no IRQ.
    write_ctr(0x45);
    EXPECT_TRUE(irq.level);
    command(0xad);
    EXPECT_FALSE(irq.level);
    EXPECT_FALSE(in(kStatus)&kObf);
    EXPECT_TRUE(read_ctr() & kCtrKbdDis);
    EXPECT_FALSE(irq.level) << "the reply was read; the disabled keyboard keeps quiet";
    command(0xae);
    EXPECT_TRUE(irq.level);
    expect_keys({0x38, 0xe0, 0x53, 0xe0, 0xd3, 0xb8, 0x9d});
    // A controller reply raises IRQ 1 too (when enabled), like QEMU's and real controllers.
    out(kStatus, 0x20);
    EXPECT_TRUE(irq.level);
    EXPECT_EQ(in(kData), 0x45);
    EXPECT_FALSE(irq.level);
}

TEST_F(I8042Test, ControllerReplyGoesAheadOfKeyData) {
    ASSERT_TRUE(kbc.send_ctrl_alt_del());
    EXPECT_EQ(read_ctr(), 0x45);  // not the pending 0x1d
    EXPECT_EQ(command(0xaa, {}, 1), std::vector<std::uint8_t>{0x55});
    EXPECT_EQ(command(0xab, {}, 1), std::vector<std::uint8_t>{0x00});
    expect_keys(set1_cad);
}

TEST_F(I8042Test, CtrlAltDelIsAllOrNothing) {
    int sent = 0;
    while (kbc.send_ctrl_alt_del()) {
        ++sent;
        ASSERT_LT(sent, 100);
    }
    EXPECT_EQ(sent, static_cast<int>(I8042::kKeyCapacity / set1_cad.size()));
    EXPECT_EQ(kbc.save_state().kbd_keys.size() % set1_cad.size(), 0U);
}

TEST_F(I8042Test, ResetLine) {
    out(kStatus, 0xfe);
    EXPECT_EQ(resets, 1);
    out(kStatus, 0xd1);
    out(kData, 0xfe);  // output port with bit 0 low: reset
    EXPECT_EQ(resets, 2);
    out(kStatus, 0xd1);
    out(kData, 0x03);    // bit 0 high: nothing
    out(kStatus, 0xff);  // pulse mask without bit 0: nothing
    EXPECT_EQ(resets, 2);
    EXPECT_EQ(command(0xd0, {}, 1), std::vector<std::uint8_t>{0x03});
}

TEST_F(I8042Test, SaveRestoreRoundTrip) {
    std::uint8_t ctr = probe_controller() & static_cast<std::uint8_t>(~kCtrXlate);
    setup_kbd(ctr);
    ps2_command({0xed, 0x02});
    ASSERT_TRUE(kbc.send_ctrl_alt_del());
    EXPECT_EQ(in(kData), 0x14);
    out(kData, 0xf3);  // leave a command waiting for its parameter, and its ACK unread
    // Through the snapshot encoding, as a restore in a new process sees it.
    const I8042State saved = load_from_bytes<I8042State>(save_to_bytes(kbc.save_state())).value();
    EXPECT_EQ(saved.kbd_pending, 0xf3);

    RecordingIrq irq2;
    I8042 other(irq2, [] {});
    other.restore_state(saved);
    EXPECT_TRUE(irq2.level) << "restored with bytes pending and the interrupt enabled";
    auto other_in = [&](std::uint64_t port) {
        std::uint8_t b = 0;
        other.read(port, std::span(&b, 1));
        return b;
    };
    std::vector<std::uint8_t> got;
    while ((other_in(kStatus) & kObf) && got.size() < 32) {
        got.push_back(other_in(kData));
    }
    std::vector<std::uint8_t> want{0xfa};  // the ACK first, then the keys
    want.insert(want.end(), set2_cad.begin() + 1, set2_cad.end());
    EXPECT_EQ(got, want);
    std::uint8_t param = 0x11;
    other.write(kData, std::span(&param, 1));
    EXPECT_EQ(other.save_state().kbd_typematic, 0x11);
    EXPECT_EQ(other.save_state().kbd_leds, 0x02);
    EXPECT_EQ(other.save_state().command_byte, ctr);
}

TEST_F(I8042Test, HostileStateIsClamped) {
    I8042State s;
    s.kbd_scan_set = 9;
    s.kbd_pending = 0x42;
    s.kbd_leds = 0xff;
    s.kbd_keys.assign(100000, 0x1d);
    s.kbd_replies.assign(100000, 0xfa);
    s.output_aux = true;  // without an output byte
    kbc.restore_state(s);
    const I8042State r = kbc.save_state();
    EXPECT_EQ(r.kbd_scan_set, 2);
    EXPECT_EQ(r.kbd_pending, 0);
    EXPECT_EQ(r.kbd_leds, 0x07);
    EXPECT_EQ(r.kbd_keys.size(), I8042::kKeyCapacity);
    EXPECT_EQ(r.kbd_replies.size(), I8042::kReplyCapacity);
    EXPECT_FALSE(r.output_aux);
}

TEST_F(I8042Test, OddAccessesAreHarmless) {
    EXPECT_EQ(in(kData), 0x00);  // empty output buffer
    for (std::uint64_t off : {1, 2, 3}) {
        EXPECT_EQ(in(off), 0xff);
        out(off, 0xfe);
    }
    std::uint8_t wide[4] = {0xfe, 0xfe, 0xfe, 0xfe};
    kbc.read(kStatus, std::span(wide, 4));
    EXPECT_EQ(wide[1], 0xff);
    kbc.write(kData, std::span<const std::uint8_t>());
    kbc.read(kData, std::span<std::uint8_t>());
    // Controller RAM writes swallow their data byte; reads answer 0.
    command(0x7f, {0xff});
    EXPECT_EQ(command(0x3f, {}, 1), std::vector<std::uint8_t>{0x00});
    // A command abandons the previous one's data phase: 0xd1 then a new command, then data.
    out(kStatus, 0xd1);
    out(kStatus, 0xa8);
    out(kData, 0xfe);  // to the keyboard, not the output port
    EXPECT_EQ(resets, 0);
    EXPECT_EQ(in(kData), 0xfa);
    // Every command and data byte, in any order, leaves a bounded device.
    for (int c = 0; c < 256; ++c) {
        if ((c & 0xf1) == 0xf0 || c == 0xd1) {
            continue;  // reset pulses / output port, covered above
        }
        out(kStatus, static_cast<std::uint8_t>(c));
        out(kData, static_cast<std::uint8_t>(255 - c));
        out(kData, static_cast<std::uint8_t>(c));
    }
    const I8042State s = kbc.save_state();
    EXPECT_LE(s.kbd_replies.size(), I8042::kReplyCapacity);
    EXPECT_EQ(resets, 0);
    flush();
}

TEST_F(I8042Test, CtrlAltDelFromAnotherThread) {
    std::uint8_t ctr = probe_controller();
    setup_kbd(ctr);
    std::thread api([this] {
        for (int i = 0; i < 4; ++i) {
            while (!kbc.send_ctrl_alt_del()) {
                std::this_thread::yield();
            }
        }
    });
    std::vector<std::uint8_t> got;
    while (got.size() < 4 * set1_cad.size()) {
        if (in(kStatus)&kObf) {
            got.push_back(in(kData));
        }
    }
    api.join();
    for (std::size_t i = 0; i < got.size(); ++i) {
        EXPECT_EQ(got[i], set1_cad[i % set1_cad.size()]) << "byte " << i;
    }
}

}  // namespace
}  // namespace vireo
