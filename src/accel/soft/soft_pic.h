// The soft VM's 8259A pair (Intel 8259A datasheet), as KVM's in-kernel PIC is for a KVM VM:
// the master at ports 0x20/0x21 and the slave at 0xa0/0xa1, cascaded on the master's IR2. ICW1-4
// initialisation (vector base, cascade, auto-EOI), OCW1 (the mask), OCW2 (non-specific and
// specific EOI, with or without rotation, taken as plain EOIs: priorities stay fixed, IR0
// highest), OCW3 (reading IRR or ISR). Inputs are edge-triggered (the ELCR is not modelled). The
// master's output is wired to the BSP's LINT0: the BSP's vCPU takes an interrupt from it when its
// LAPIC's LVT LINT0 is unmasked in ExtINT mode, and the vector comes from acknowledge().
// Lines are set from any thread; one mutex covers the state.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <mutex>
#include <span>
#include <vector>

namespace vireo::soft {

class SoftPic {
public:
    // Called (without the PIC's lock) when the output may have risen, to wake the BSP.
    using Wake = std::function<void()>;
    explicit SoftPic(Wake wake);

    static bool owns(std::uint16_t port) {
        return port == 0x20 || port == 0x21 || port == 0xa0 || port == 0xa1;
    }
    void pio_read(std::uint16_t port, std::span<std::uint8_t> data);
    void pio_write(std::uint16_t port, std::span<const std::uint8_t> data);

    // ISA IRQ 0-15: a rising edge requests the interrupt.
    void set_irq(unsigned irq, bool level);
    // Whether the master's INT output is asserted (an unmasked request above what is in service).
    bool output() const;
    // The interrupt acknowledge cycle: the vector of the highest request (IRR -> ISR, unless
    // auto-EOI), or the spurious IR7 vector when the request went away.
    int acknowledge();

    // The state in the soft VM's own encoding (VmPlatformState::pic_master/pic_slave on "soft").
    std::vector<std::uint8_t> save(unsigned chip) const;
    // Empty (a snapshot from before the soft PIC) leaves the chip masked. False: malformed.
    bool restore(unsigned chip, std::span<const std::uint8_t> bytes);

private:
    struct Chip {
        std::uint8_t irr = 0, isr = 0, imr = 0xff;
        std::uint8_t level = 0;      // input lines as last set (for edge detection)
        std::uint8_t base = 0;       // ICW2: vector of IR0 (bits 7:3)
        std::uint8_t init_step = 0;  // 0: initialised; 2, 3, 4: the ICW expected next
        bool icw4 = false;           // ICW1 bit 0: ICW4 follows
        bool single = false;         // ICW1 bit 1: no ICW3
        bool auto_eoi = false;       // ICW4 bit 1
        bool read_isr = false;       // OCW3: the command port reads ISR (else IRR)
    };
    // The highest-priority bit of `bits` (IR0 highest), or -1.
    static int highest(std::uint8_t bits);
    // The IR a chip would raise now: a request not masked and above everything in service.
    static int pending(const Chip& c);
    bool output_locked() const;
    void write_locked(unsigned chip, bool data, std::uint8_t v);

    Wake m_wake;
    mutable std::mutex m_mutex;
    std::array<Chip, 2> m_chip{};
};

}  // namespace vireo::soft
