#include "devices/legacy/i8042.h"

#include <algorithm>

namespace vireo {

namespace {

constexpr std::uint64_t kDataOffset = 0;    // port 0x60
constexpr std::uint64_t kStatusOffset = 4;  // port 0x64

constexpr std::uint8_t kStatusObf = 0x01;     // output buffer full
constexpr std::uint8_t kStatusSystem = 0x04;  // system flag: self-test passed

// Controller commands (IBM PS/2 technical reference, "Keyboard/Auxiliary Device Controller").
constexpr std::uint8_t kCmdReadCommandByte = 0x20;
constexpr std::uint8_t kCmdWriteCommandByte = 0x60;
constexpr std::uint8_t kCmdSelfTest = 0xaa;
constexpr std::uint8_t kCmdInterfaceTest = 0xab;
constexpr std::uint8_t kCmdReadOutputPort = 0xd0;
constexpr std::uint8_t kCmdWriteOutputPort = 0xd1;
constexpr std::uint8_t kCmdPulseReset = 0xfe;  // pulse output port bit 0: CPU reset

}  // namespace

void I8042::read(std::uint64_t offset, std::span<std::uint8_t> out) {
    std::lock_guard lock(m_mutex);
    std::fill(out.begin(), out.end(), 0xff);
    if (out.empty()) {
        return;
    }
    if (offset == kStatusOffset) {
        out[0] = static_cast<std::uint8_t>(kStatusSystem | (m_s.output ? kStatusObf : 0));
    } else if (offset == kDataOffset) {
        out[0] = m_s.output.value_or(0);
        m_s.output.reset();
    }
}

void I8042::write(std::uint64_t offset, std::span<const std::uint8_t> in) {
    bool reset = false;
    {
        std::lock_guard lock(m_mutex);
        if (in.empty()) {
            return;
        }
        if (offset == kStatusOffset) {
            if (in[0] == kCmdPulseReset) {
                reset = true;
            } else {
                command(in[0]);
            }
        } else if (offset == kDataOffset) {
            if (m_s.pending_command == kCmdWriteOutputPort && (in[0] & 0x01) == 0) {
                reset = true;  // output port bit 0 low holds the CPU in reset
            }
            data(in[0]);
        }
    }
    if (reset && m_reset) {
        m_reset();  // outside the lock: the machine may stop vCPUs
    }
}

void I8042::command(std::uint8_t cmd) {
    switch (cmd) {
        case kCmdReadCommandByte:
            m_s.output = m_s.command_byte;
            break;
        case kCmdWriteCommandByte:
        case kCmdWriteOutputPort:
            m_s.pending_command = cmd;
            break;
        case kCmdSelfTest:
            m_s.output = 0x55;  // passed
            break;
        case kCmdInterfaceTest:
            m_s.output = 0x00;  // no error
            break;
        case kCmdReadOutputPort:
            m_s.output = 0x01;  // reset line inactive (bit 0 high)
            break;
        default:
            break;  // enable/disable keyboard or aux etc.: nothing behind them
    }
}

void I8042::data(std::uint8_t value) {
    if (m_s.pending_command == kCmdWriteCommandByte) {
        m_s.command_byte = value;
    }
    // A byte for the (absent) keyboard, or the output port value: nothing answers.
    m_s.pending_command = 0;
}

I8042State I8042::save_state() const {
    std::lock_guard lock(m_mutex);
    return m_s;
}

void I8042::restore_state(const I8042State& s) {
    std::lock_guard lock(m_mutex);
    m_s = s;
}

}  // namespace vireo
