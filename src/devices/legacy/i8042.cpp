#include "devices/legacy/i8042.h"

#include <algorithm>
#include <array>

#include <fmt/format.h>

namespace vireo {

namespace {

constexpr std::uint64_t kDataOffset = 0;    // port 0x60
constexpr std::uint64_t kStatusOffset = 4;  // port 0x64

// Status register (port 0x64, read).
constexpr std::uint8_t kStatusObf = 0x01;       // output buffer full
constexpr std::uint8_t kStatusSystem = 0x04;    // system flag (command byte bit 2)
constexpr std::uint8_t kStatusCommand = 0x08;   // last write was to port 0x64
constexpr std::uint8_t kStatusUnlocked = 0x10;  // keyboard not inhibited by the key lock
constexpr std::uint8_t kStatusAuxData = 0x20;   // output buffer holds AUX data

// Command byte ("controller configuration byte", Linux's CTR).
constexpr std::uint8_t kCtrKbdInt = 0x01;  // IRQ 1 when keyboard data is in the output buffer
constexpr std::uint8_t kCtrSystem = 0x04;
constexpr std::uint8_t kCtrKbdDis = 0x10;  // keyboard interface disabled (clock held low)
constexpr std::uint8_t kCtrAuxDis = 0x20;
constexpr std::uint8_t kCtrTranslate = 0x40;  // set 2 -> set 1 translation

// Controller commands (port 0x64).
constexpr std::uint8_t kCmdReadCommandByte = 0x20;
constexpr std::uint8_t kCmdReadRamLast = 0x3f;  // 0x21..0x3f: read controller RAM
constexpr std::uint8_t kCmdWriteCommandByte = 0x60;
constexpr std::uint8_t kCmdWriteRamLast = 0x7f;  // 0x61..0x7f: write controller RAM
constexpr std::uint8_t kCmdAuxDisable = 0xa7;
constexpr std::uint8_t kCmdAuxEnable = 0xa8;
constexpr std::uint8_t kCmdAuxTest = 0xa9;
constexpr std::uint8_t kCmdSelfTest = 0xaa;
constexpr std::uint8_t kCmdKbdTest = 0xab;
constexpr std::uint8_t kCmdKbdDisable = 0xad;
constexpr std::uint8_t kCmdKbdEnable = 0xae;
constexpr std::uint8_t kCmdReadInputPort = 0xc0;
constexpr std::uint8_t kCmdReadOutputPort = 0xd0;
constexpr std::uint8_t kCmdWriteOutputPort = 0xd1;
constexpr std::uint8_t kCmdWriteKbdOutput = 0xd2;  // next data byte appears as keyboard data
constexpr std::uint8_t kCmdWriteAuxOutput = 0xd3;  // ... as AUX data (Linux's AUX loopback test)
constexpr std::uint8_t kCmdWriteAux = 0xd4;        // next data byte goes to the AUX device
constexpr std::uint8_t kCmdPulseFirst = 0xf0;      // 0xf0..0xff: pulse output port bits 3:0
                                                   // whose command bit is 0; bit 0 = CPU reset

constexpr std::uint8_t kSelfTestPassed = 0x55;
constexpr std::uint8_t kInterfaceTestPassed = 0x00;
constexpr std::uint8_t kInputPortUnlocked = 0x80;   // bit 7: keyboard not inhibited
constexpr std::uint8_t kOutputPortResetA20 = 0x03;  // bit 0 reset line inactive, bit 1 A20 on

// Keyboard commands (port 0x60 with no controller command pending) and replies.
constexpr std::uint8_t kKbdSetLeds = 0xed;
constexpr std::uint8_t kKbdEcho = 0xee;
constexpr std::uint8_t kKbdScanSet = 0xf0;
constexpr std::uint8_t kKbdGetId = 0xf2;
constexpr std::uint8_t kKbdTypematic = 0xf3;
constexpr std::uint8_t kKbdEnable = 0xf4;
constexpr std::uint8_t kKbdDisable = 0xf5;  // stop scanning, load defaults
constexpr std::uint8_t kKbdDefaults = 0xf6;
constexpr std::uint8_t kKbdReset = 0xff;
constexpr std::uint8_t kKbdAck = 0xfa;
constexpr std::uint8_t kKbdBatPassed = 0xaa;
constexpr std::uint8_t kKbdId1 = 0xab;
constexpr std::uint8_t kKbdId2 = 0x83;            // MF2 keyboard
constexpr std::uint8_t kKbdId2Translated = 0x41;  // 0x83 through the set 2 -> 1 translation
constexpr std::uint8_t kKbdDefaultTypematic = 0x2b;
// Scan set numbers as the translating controller reports them (set 2 codes 1, 2, 3 in set 1).
constexpr std::array<std::uint8_t, 4> kTranslatedSetNumber = {0x00, 0x43, 0x41, 0x3f};

// Ctrl down, Alt down, Delete down, Delete up, Alt up, Ctrl up (left Ctrl and Alt).
constexpr std::array<std::uint8_t, 8> kCtrlAltDelSet1 = {0x1d, 0x38, 0xe0, 0x53,
                                                         0xe0, 0xd3, 0xb8, 0x9d};
constexpr std::array<std::uint8_t, 11> kCtrlAltDelSet2 = {0x14, 0x11, 0xe0, 0x71, 0xe0, 0xf0,
                                                          0x71, 0xf0, 0x11, 0xf0, 0x14};
constexpr std::array<std::uint8_t, 9> kCtrlAltDelSet3 = {0x11, 0x19, 0x64, 0xf0, 0x64,
                                                         0xf0, 0x19, 0xf0, 0x11};

}  // namespace

void I8042::read(std::uint64_t offset, std::span<std::uint8_t> out) {
    std::lock_guard lock(m_mutex);
    std::fill(out.begin(), out.end(), 0xff);
    if (out.empty()) {
        return;
    }
    if (offset == kStatusOffset) {
        const bool kbd_data =
            !(m_s.command_byte & kCtrKbdDis) && (!m_s.kbd_replies.empty() || !m_s.kbd_keys.empty());
        std::uint8_t status = kStatusUnlocked;
        if (m_s.output || kbd_data) {
            status |= kStatusObf;
        }
        if (m_s.output && m_s.output_aux) {
            status |= kStatusAuxData;
        }
        if (m_s.command_byte & kCtrSystem) {
            status |= kStatusSystem;
        }
        if (m_s.last_write_was_command) {
            status |= kStatusCommand;
        }
        out[0] = status;
    } else if (offset == kDataOffset) {
        // Controller replies come first, then the keyboard's replies, then its key data (the
        // keyboard only sends while its interface is enabled). An empty buffer reads 0.
        std::uint8_t value = 0;
        if (m_s.output) {
            value = *m_s.output;
            m_s.output.reset();
            m_s.output_aux = false;
        } else if (!(m_s.command_byte & kCtrKbdDis)) {
            auto& queue = m_s.kbd_replies.empty() ? m_s.kbd_keys : m_s.kbd_replies;
            if (!queue.empty()) {
                value = queue.front();
                queue.erase(queue.begin());
            }
        }
        out[0] = value;
        // Drop the line so the next byte, if any, is a fresh edge for the edge-triggered IRQ 1.
        if (m_irq_level) {
            m_irq_level = false;
            m_irq.set_level(false);
        }
    }
    update_irq();
}

void I8042::write(std::uint64_t offset, std::span<const std::uint8_t> in) {
    bool reset = false;
    {
        std::lock_guard lock(m_mutex);
        if (in.empty()) {
            return;
        }
        if (offset == kStatusOffset) {
            m_s.last_write_was_command = true;
            const std::uint8_t cmd = in[0];
            if (cmd >= kCmdPulseFirst) {
                reset = (cmd & 0x01) == 0;  // bit 0 of the pulse mask low: pulse the reset line
                m_s.pending_command = 0;
            } else {
                controller_command(cmd);
            }
        } else if (offset == kDataOffset) {
            m_s.last_write_was_command = false;
            reset = data_write(in[0]);
        }
        update_irq();
    }
    if (reset && m_reset) {
        m_reset();  // outside the lock: the machine may stop vCPUs
    }
}

void I8042::controller_command(std::uint8_t cmd) {
    m_s.pending_command = 0;  // a new command abandons one still waiting for its data byte
    if (cmd > kCmdReadCommandByte && cmd <= kCmdReadRamLast) {
        put_controller_output(0x00, false);  // controller RAM is not kept: reads 0
        return;
    }
    if (cmd >= kCmdWriteCommandByte && cmd <= kCmdWriteRamLast) {
        m_s.pending_command = cmd;  // 0x60 writes the command byte, 0x61..0x7f are dropped
        return;
    }
    switch (cmd) {
        case kCmdReadCommandByte:
            put_controller_output(m_s.command_byte, false);
            break;
        case kCmdWriteOutputPort:
        case kCmdWriteKbdOutput:
        case kCmdWriteAuxOutput:
        case kCmdWriteAux:
            m_s.pending_command = cmd;
            break;
        case kCmdAuxDisable:
            m_s.command_byte |= kCtrAuxDis;
            break;
        case kCmdAuxEnable:
            m_s.command_byte &= static_cast<std::uint8_t>(~kCtrAuxDis);
            break;
        case kCmdSelfTest:
            m_s.command_byte |= kCtrSystem;  // a passed self-test sets the system flag
            put_controller_output(kSelfTestPassed, false);
            break;
        case kCmdAuxTest:
        case kCmdKbdTest:
            put_controller_output(kInterfaceTestPassed, false);
            break;
        case kCmdKbdDisable:
            m_s.command_byte |= kCtrKbdDis;
            break;
        case kCmdKbdEnable:
            m_s.command_byte &= static_cast<std::uint8_t>(~kCtrKbdDis);
            break;
        case kCmdReadInputPort:
            put_controller_output(kInputPortUnlocked, false);
            break;
        case kCmdReadOutputPort:
            put_controller_output(kOutputPortResetA20, false);
            break;
        default:
            break;  // A20 gate (0xdd/0xdf), test inputs, vendor commands: nothing to do
    }
}

bool I8042::data_write(std::uint8_t value) {
    const std::uint8_t pending = m_s.pending_command;
    m_s.pending_command = 0;
    switch (pending) {
        case 0:
            keyboard_write(value);
            return false;
        case kCmdWriteCommandByte:
            m_s.command_byte = value;
            return false;
        case kCmdWriteOutputPort:
            return (value & 0x01) == 0;  // output port bit 0 low holds the CPU in reset
        case kCmdWriteKbdOutput:
            put_controller_output(value, false);
            return false;
        case kCmdWriteAuxOutput:
            put_controller_output(value, true);
            return false;
        default:
            return false;  // controller RAM, or a byte for the AUX device that is not there
    }
}

void I8042::keyboard_write(std::uint8_t value) {
    // Sending to the keyboard enables its interface (the controller releases the clock line).
    m_s.command_byte &= static_cast<std::uint8_t>(~kCtrKbdDis);
    const bool translated = (m_s.command_byte & kCtrTranslate) != 0;

    if (m_s.kbd_pending != 0) {  // the parameter of the previous command
        const std::uint8_t cmd = m_s.kbd_pending;
        m_s.kbd_pending = 0;
        if (cmd == kKbdSetLeds) {
            m_s.kbd_leds = value & 0x07;
            keyboard_reply({kKbdAck});
        } else if (cmd == kKbdTypematic) {
            m_s.kbd_typematic = value & 0x7f;
            keyboard_reply({kKbdAck});
        } else if (value == 0) {  // kKbdScanSet: 0 asks for the current set
            const std::uint8_t set = m_s.kbd_scan_set;
            keyboard_reply({kKbdAck, translated ? kTranslatedSetNumber[set] : set});
        } else {
            if (value <= 3) {
                m_s.kbd_scan_set = value;
            }
            keyboard_reply({kKbdAck});
        }
        return;
    }

    m_s.kbd_replies.clear();  // a new command ends whatever the previous one was answering
    switch (value) {
        case kKbdSetLeds:
        case kKbdTypematic:
        case kKbdScanSet:
            m_s.kbd_pending = value;
            keyboard_reply({kKbdAck});
            break;
        case kKbdEcho:
            keyboard_reply({kKbdEcho});
            break;
        case kKbdGetId:
            keyboard_reply({kKbdAck, kKbdId1, translated ? kKbdId2Translated : kKbdId2});
            break;
        case kKbdEnable:
            m_s.kbd_scanning = true;
            keyboard_reply({kKbdAck});
            break;
        case kKbdDisable:
        case kKbdDefaults:
        case kKbdReset:
            m_s.kbd_scan_set = 2;
            m_s.kbd_typematic = kKbdDefaultTypematic;
            if (value != kKbdDefaults) {  // 0xf6 keeps scanning and the unsent keys
                m_s.kbd_keys.clear();
                m_s.kbd_scanning = value == kKbdReset;
            }
            if (value == kKbdReset) {
                m_s.kbd_leds = 0;
                keyboard_reply({kKbdAck, kKbdBatPassed});
            } else {
                keyboard_reply({kKbdAck});
            }
            break;
        default:
            keyboard_reply({kKbdAck});  // resend, set-3 key types, unknown: acknowledged
            break;
    }
}

void I8042::keyboard_reply(std::initializer_list<std::uint8_t> bytes) {
    for (const std::uint8_t b : bytes) {
        if (m_s.kbd_replies.size() < kReplyCapacity) {
            m_s.kbd_replies.push_back(b);
        }
    }
}

void I8042::put_controller_output(std::uint8_t value, bool aux) {
    // A controller reply goes ahead of keyboard data (QEMU's i8042 does the same); an unread
    // earlier reply is overwritten.
    m_s.output = value;
    m_s.output_aux = aux;
}

bool I8042::send_ctrl_alt_del() {
    std::lock_guard lock(m_mutex);
    if (!m_s.kbd_scanning) {
        return false;
    }
    std::span<const std::uint8_t> codes;
    if (m_s.command_byte & kCtrTranslate || m_s.kbd_scan_set == 1) {
        codes = kCtrlAltDelSet1;
    } else if (m_s.kbd_scan_set == 3) {
        codes = kCtrlAltDelSet3;
    } else {
        codes = kCtrlAltDelSet2;
    }
    if (m_s.kbd_keys.size() + codes.size() > kKeyCapacity) {
        return false;
    }
    m_s.kbd_keys.insert(m_s.kbd_keys.end(), codes.begin(), codes.end());
    update_irq();
    return true;
}

bool I8042::irq_level() const {
    // The byte the guest reads next decides: a controller reply (AUX or not) goes first.
    bool kbd_byte = false;
    if (m_s.output) {
        kbd_byte = !m_s.output_aux;
    } else if (!(m_s.command_byte & kCtrKbdDis)) {
        kbd_byte = !m_s.kbd_replies.empty() || !m_s.kbd_keys.empty();
    }
    return kbd_byte && (m_s.command_byte & kCtrKbdInt) != 0;
}

void I8042::update_irq() {
    const bool level = irq_level();
    if (level != m_irq_level) {
        m_irq_level = level;
        m_irq.set_level(level);
    }
}

I8042State I8042::save_state() const {
    std::lock_guard lock(m_mutex);
    return m_s;
}

void I8042::restore_state(const I8042State& s) {
    std::lock_guard lock(m_mutex);
    m_s = s;
    if (m_s.kbd_scan_set < 1 || m_s.kbd_scan_set > 3) {
        m_s.kbd_scan_set = 2;
    }
    if (m_s.kbd_pending != kKbdSetLeds && m_s.kbd_pending != kKbdTypematic &&
        m_s.kbd_pending != kKbdScanSet) {
        m_s.kbd_pending = 0;
    }
    m_s.kbd_leds &= 0x07;
    m_s.kbd_typematic &= 0x7f;
    if (m_s.kbd_replies.size() > kReplyCapacity) {
        m_s.kbd_replies.resize(kReplyCapacity);
    }
    if (m_s.kbd_keys.size() > kKeyCapacity) {
        m_s.kbd_keys.resize(kKeyCapacity);
    }
    if (!m_s.output) {
        m_s.output_aux = false;
    }
    m_irq_level = irq_level();
    m_irq.set_level(m_irq_level);
}

std::vector<acpi::Aml> I8042::acpi_devices(const Placement& placement) const {
    using acpi::Aml;
    if (placement.ports.empty() || placement.gsis.empty()) {
        return {Aml::failed(Error("the i8042 needs a port range and an IRQ"))};
    }
    const std::uint64_t base = placement.ports.front().base;
    const std::uint32_t irq = placement.gsis.front();
    if (irq >= 16) {
        return {Aml::failed(Error(fmt::format("i8042 IRQ {} is not an ISA IRQ (0-15)", irq)))};
    }
    if (base > 0xFFFF - (kPorts - 1)) {
        return {Aml::failed(Error(fmt::format("i8042 at {:#x} runs past port 0xffff", base)))};
    }
    const auto data = static_cast<std::uint16_t>(base);
    const auto command = static_cast<std::uint16_t>(base + 4);
    const auto irq_mask = static_cast<std::uint16_t>(1U << irq);
    return {Aml::device(
        "PS2K", {Aml::name("_HID", Aml::eisa_id("PNP0303")),
                 Aml::name("_CRS", Aml::resource_template(
                                       {acpi::io_port_descriptor(true, data, data, 1, 1),
                                        acpi::io_port_descriptor(true, command, command, 1, 1),
                                        acpi::irq_no_flags_descriptor(irq_mask)}))})};
}

}  // namespace vireo
