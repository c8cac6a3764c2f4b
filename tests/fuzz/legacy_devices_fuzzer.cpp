// libFuzzer target: the legacy devices as a hostile guest drives them. The input is a sequence of
// 3-byte accesses (device and direction, offset, value) run against a UART, an i8042, the CMOS RTC
// and the ACPI PM registers; host console input and Ctrl-Alt-Del key presses are interleaved.
// Nothing may crash or grow without bound.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>

#include "devices/legacy/acpi_pm.h"
#include "devices/legacy/cmos_rtc.h"
#include "devices/legacy/i8042.h"
#include "devices/legacy/serial8250.h"

namespace {

struct NullIrq final : vireo::IrqLine {
    void set_level(bool) override {}
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    NullIrq irq;
    vireo::Serial8250 uart(irq, [](std::span<const std::uint8_t>) {});
    vireo::I8042 kbc(irq, [] {});
    vireo::CmosRtc rtc(256ULL << 20, 0, [] { return std::time_t{0}; });
    vireo::AcpiPm pm(
        5, 1, [] {}, [] {});
    vireo::BusDevice* devices[] = {&uart, &kbc, &rtc, &pm};
    const std::uint64_t ports[] = {vireo::Serial8250::kPorts, vireo::I8042::kPorts,
                                   vireo::CmosRtc::kPorts, vireo::AcpiPm::kPorts};
    for (std::size_t i = 0; i + 3 <= size; i += 3) {
        const std::uint8_t op = data[i];
        const std::size_t dev = op % 6;
        const std::uint8_t value = data[i + 2];
        if (dev == 4) {
            uart.queue_input(std::span(&data[i + 1], 2));
            continue;
        }
        if (dev == 5) {
            kbc.send_ctrl_alt_del();
            continue;
        }
        const std::uint64_t offset = data[i + 1] % (ports[dev] + 1);  // also one past the end
        std::uint8_t buf[8];
        std::fill(std::begin(buf), std::end(buf), value);
        const std::size_t width = std::size_t{1} << ((op >> 4) & 0x3);  // 1, 2, 4 or 8 bytes
        if (op & 0x80) {
            devices[dev]->write(offset, std::span<const std::uint8_t>(buf, width));
        } else {
            devices[dev]->read(offset, std::span<std::uint8_t>(buf, width));
        }
    }
    const auto s = uart.save_state();
    uart.restore_state(s);
    if (s.rx_fifo.size() > vireo::Serial8250::kRxCapacity) {
        __builtin_trap();
    }
    const auto k = kbc.save_state();
    kbc.restore_state(k);
    if (k.kbd_keys.size() > vireo::I8042::kKeyCapacity ||
        k.kbd_replies.size() > vireo::I8042::kReplyCapacity) {
        __builtin_trap();
    }
    return 0;
}
