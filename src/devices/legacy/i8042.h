// The i8042 keyboard controller with a PS/2 keyboard behind it and no auxiliary (mouse) device:
// enough for Linux's i8042 and atkbd drivers to probe a keyboard and receive key events, which is
// how SendCtrlAltDel reaches the guest (Firecracker's way), plus the CPU reset line (command 0xFE,
// or clearing bit 0 of the output port with 0xD1) that the kernel's reboot fallback uses.
// Ports: data 0x60 (offset 0), status/command 0x64 (offset 4). Keyboard interrupt: ISA IRQ 1.
// References: IBM PS/2 Hardware Interface Technical Reference, "Keyboard/Auxiliary Device
// Controller" and "Keyboard"; Linux drivers/input/serio/i8042.c and keyboard/atkbd.c.
//
// Model: one output buffer byte (status OBF, AUXDATA says where it came from) fed from controller
// replies first, then from the keyboard's own queue (command replies ahead of key data, as QEMU's
// ps2.c) while the keyboard interface is enabled (command byte bit 4 clear). The input buffer is
// consumed at once, so IBF always reads 0. IRQ 1 is high while the output buffer holds a
// non-aux byte and the command byte's keyboard interrupt bit (0) is set; reading the data port
// drops the line before the next byte is loaded, so every byte is a new edge for the (edge
// triggered) ISA interrupt. There is no IRQ 12: aux bytes (0xD3 loopback) never interrupt.
//
// Key codes are produced in their final form: set 1 while the command byte's translate bit (6) is
// set (what Linux uses by default), else the keyboard's scan set (2 by default, or 1 or 3).
//
// Guest kernel command line (measured with Debian's 6.1 cloud kernel under vireo): NO i8042
// options are needed, and `i8042.nopnp` must NOT be given. vireo's ACPI is hardware-reduced, so
// Linux has no legacy PIC and maps an ISA IRQ only when a device's _CRS names it: the DSDT's
// Device(PS2K) PNP0303 (acpi::PlatformDescription::i8042_irq) maps GSI 1 (to Linux irq 26 or so)
// and the driver finds the controller through PNP, without AUX ("PNP: PS/2 appears to have AUX
// port disabled" sets i8042.noaux itself). With `i8042.nopnp` the driver requests irq 1 itself,
// which does not exist there: "i8042: probe of i8042 failed with error -22", no keyboard.
// Firecracker's boot arguments minus nopnp (`i8042.noaux i8042.nomux i8042.dumbkbd`) work too;
// with `i8042.dumbkbd` atkbd sends the keyboard no commands (fewer exits) and assumes translated
// set 2; without it the keyboard answers atkbd's probe (0xF2 ID, 0xF5, 0xED, 0xF3, 0xF4). (The
// driver's AUX probe, run only without PNP, passes the loopback test here and then waits 250 ms
// for an IRQ 12 that never comes before deciding there is no AUX port; unit-tested only.)
// Ctrl-Alt-Del reaches init as SIGINT only if init cleared /proc/sys/kernel/ctrl-alt-del (or
// called reboot(RB_DISABLE_CAD)); otherwise the kernel restarts at once (a reset exit).
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <span>
#include <vector>

#include "base/state_archive.h"
#include "bus/bus_device.h"
#include "devices/component.h"
#include "irq/irq_line.h"

namespace vireo {

// Everything the controller and its keyboard hold; what a snapshot saves.
struct I8042State {
    // Controller.
    std::uint8_t command_byte = 0x45;     // translate, system flag, keyboard interrupt enabled
    std::optional<std::uint8_t> output;   // byte waiting in the output buffer
    bool output_aux = false;              // ... and it came from the AUX side (status AUXDATA)
    std::uint8_t pending_command = 0;     // controller command awaiting its data byte on port 0x60
    bool last_write_was_command = false;  // status bit 3 (A2): last write went to port 0x64
    // Keyboard (PS/2 device behind the controller).
    bool kbd_scanning = true;               // 0xF4 enable / 0xF5 disable scanning
    std::uint8_t kbd_scan_set = 2;          // 1, 2 or 3 (0xF0)
    std::uint8_t kbd_leds = 0;              // 0xED: scroll (0), num (1), caps (2)
    std::uint8_t kbd_typematic = 0x2b;      // 0xF3: 10.9 cps, 500 ms delay
    std::uint8_t kbd_pending = 0;           // keyboard command awaiting its parameter byte
    std::vector<std::uint8_t> kbd_replies;  // command replies, sent before key data
    std::vector<std::uint8_t> kbd_keys;     // scan codes not yet sent
};

template <typename Ar>
void persist(Ar& ar, I8042State& s);

class I8042 final : public BusDevice, public StateComponent<I8042, I8042State> {
public:
    static constexpr std::uint64_t kPorts = 5;  // 0x60..0x64
    // Bounds on the keyboard's queues; a whole key sequence that does not fit is refused.
    static constexpr std::size_t kKeyCapacity = 64;
    static constexpr std::size_t kReplyCapacity = 16;

    // `irq`: ISA IRQ 1. `reset`: called (outside the device lock) when the guest pulses the CPU
    // reset line.
    I8042(IrqLine& irq, std::function<void()> reset) : m_irq(irq), m_reset(std::move(reset)) {}

    void read(std::uint64_t offset, std::span<std::uint8_t> data) override;
    void write(std::uint64_t offset, std::span<const std::uint8_t> data) override;

    // Presses and releases Ctrl, Alt and Delete: Ctrl down, Alt down, Del down, Del up, Alt up,
    // Ctrl up (Delete is an extended key: E0 prefix), in set 1 while the controller translates,
    // else in the keyboard's scan set, and raises IRQ 1 if the guest enabled it. Callable from any
    // thread. Returns false (nothing queued) when the guest disabled the keyboard's scanning (0xF5
    // without 0xF4 since) or the keyboard's buffer has no room for the whole sequence.
    bool send_ctrl_alt_del();

    I8042State save_state() const;
    // Takes a saved state; queue sizes and enumerated fields are clamped (snapshots are input).
    void restore_state(const I8042State& s);

    // Device(PS2K): _HID PNP0303 (IBM Enhanced keyboard), _CRS with ports 0x60 and 0x64 (the
    // placement's range start and start + 4) and the IRQ. No mouse device: Linux then sets
    // i8042.noaux itself. On a hardware-reduced platform Linux has no legacy PIC and maps an ISA
    // IRQ only when a device's _CRS names it: without this device the i8042 driver cannot
    // request IRQ 1.
    std::vector<acpi::Aml> acpi_devices(const Placement& placement) const override;

private:
    void controller_command(std::uint8_t cmd);
    bool data_write(std::uint8_t value);  // true: the CPU reset line was pulled
    void keyboard_write(std::uint8_t value);
    void keyboard_reply(std::initializer_list<std::uint8_t> bytes);
    void put_controller_output(std::uint8_t value, bool aux);
    void refill_output();
    bool irq_level() const;
    void update_irq();  // recomputes the line level after every access (kvmtool's pattern)

    mutable std::mutex m_mutex;
    IrqLine& m_irq;
    std::function<void()> m_reset;
    I8042State m_s;
    bool m_irq_level = false;
};

template <typename Ar>
void persist(Ar& ar, I8042State& s) {
    ar(s.command_byte);
    ar.opt(s.output);
    ar(s.output_aux, s.pending_command, s.last_write_was_command, s.kbd_scanning, s.kbd_scan_set,
       s.kbd_leds, s.kbd_typematic, s.kbd_pending);
    // restore_state() clamps to the live capacities; these caps only bound the allocation.
    ar.vec(s.kbd_replies, 4096);
    ar.vec(s.kbd_keys, 4096);
}

}  // namespace vireo
