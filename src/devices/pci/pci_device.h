// A PCI function as PciRoot sees it: a configuration space plus up to six BARs. Like BusDevice,
// a PciDevice sees offsets, never placement: config accesses arrive as offsets into its 4 KiB
// config space, BAR accesses as (BAR index, offset into the BAR). PciRoot decodes CF8/CFC, ECAM
// and the MMIO windows, and only forwards accesses that fall inside one function / one BAR.
//
// Threading: every method but bar_moved() may be called on any vCPU thread, concurrently with
// the device's own threads. config_* calls are serialized by PciRoot (one at a time per root);
// bar_* calls are not serialized with anything. bar_moved() runs inside a config write, so it is
// serialized with config_* calls. A device never calls back into PciRoot from these methods.
#pragma once

#include <cstdint>
#include <span>

#include "devices/pci/pci_config_space.h"

namespace vireo {

class PciDevice {
public:
    virtual ~PciDevice() = default;

    // The device's configuration space. PciRoot reads BAR shapes, addresses and the command
    // register from it, and sets the Interrupt Line and BAR addresses in add_device().
    virtual PciConfigSpace& config_space() = 0;

    // Guest config cycles. `offset` < 4096; PciRoot passes accesses of 1, 2 or 4 bytes that stay
    // within one dword. Override to observe writes (e.g. the MSI-X Message Control word, see
    // MsixTable::config_written) or to emulate registers behind a window; call these defaults
    // for the plain storage.
    virtual void config_read(std::uint16_t offset, std::span<std::uint8_t> data) {
        config_space().read(offset, data);
    }
    virtual void config_write(std::uint16_t offset, std::span<const std::uint8_t> data) {
        config_space().write(offset, data);
    }

    // Guest access to BAR `bar` (its first register's index), `offset` bytes into it. The access
    // lies inside the BAR. A read must fill all of `data`.
    virtual void bar_read(int bar, std::uint64_t offset, std::span<std::uint8_t> data) = 0;
    virtual void bar_write(int bar, std::uint64_t offset, std::span<const std::uint8_t> data) = 0;

    // The address at which BAR `bar` is decoded changed from `old_address` to `new_address`
    // (e.g. move the ioeventfds registered inside it). Reported only while the BAR's decoding is
    // enabled (Command Memory Space for memory BARs, I/O Space for I/O BARs): a guest that turns
    // decoding off, sizes a BAR (writes all-ones) and restores it produces no call; one that moves
    // a BAR produces one call when decoding is (or is turned back) on. The placement done by
    // PciRoot::add_device() is not reported: read config_space().bar_address() for it.
    virtual void bar_moved(int bar, std::uint64_t old_address, std::uint64_t new_address) {
        static_cast<void>(bar);
        static_cast<void>(old_address);
        static_cast<void>(new_address);
    }
};

}  // namespace vireo
