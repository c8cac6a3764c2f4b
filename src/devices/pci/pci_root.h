// PCI segment 0, bus 0: a host bridge at 00:00.0 and up to 31 single-function devices in slots
// 1-31, reached through
//   - configuration mechanism #1 (PCI Local Bus 3.0 §3.2.2.3.2): CONFIG_ADDRESS at port 0xCF8
//     (bit 31 enable, bus 23:16, device 15:11, function 10:8, register 7:2) and CONFIG_DATA at
//     0xCFC-0xCFF (byte n of the addressed dword at 0xCFC + n);
//   - ECAM (PCI Express Base 4.0 §7.2.2): offset = bus << 20 | device << 15 | function << 12 |
//     register;
//   - the MMIO windows (and an optional port window) in which add_device() places BARs, like
//     firmware would, and through which the guest reaches them afterwards.
// Absent functions read all-ones (Vendor ID 0xFFFF) and ignore writes.
//
// INTx: slot s, pin p (INTA# = 0 .. INTD# = 3) is wired to I/O APIC input
// 16 + (s + p) mod 8, the PCI-to-PCI bridge swizzle (PCI-to-PCI Bridge Architecture 1.2 §9.1)
// spread over the 8 inputs above the ISA IRQs; every slot's INTA# lands on a different input
// for slots 1-8. add_device() writes the GSI into Interrupt Line; intx_routes() lists the
// wiring for ACPI _PRT.
//
// Locking: m_config_mutex serializes config cycles (and the CONFIG_ADDRESS register), BAR
// bookkeeping and bar_moved() calls; m_routes_mutex (shared) guards the decoded BAR table that
// window accesses look up, and is never held while calling a device. Lock order:
// m_config_mutex -> device locks, m_config_mutex -> m_routes_mutex.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <span>
#include <vector>

#include "base/result.h"
#include "base/state_archive.h"
#include "bus/bus_device.h"
#include "devices/component.h"
#include "devices/pci/pci_device.h"

namespace vireo {

struct PciWindow {
    std::uint64_t base = 0;
    std::uint64_t size = 0;  // 0: no window
};

struct PciRootConfig {
    PciWindow mmio32;  // must lie below 4 GiB; takes Memory32 BARs
    PciWindow mmio64;  // takes Memory64 BARs
    PciWindow io;      // ports; takes I/O BARs (none: devices with I/O BARs are refused)
};

// One INTx wire: slot, pin (0 = INTA#), I/O APIC GSI.
struct PciIntxRoute {
    std::uint8_t slot;
    std::uint8_t pin;
    std::uint32_t gsi;

    bool operator==(const PciIntxRoute&) const = default;
};

struct PciRootState {
    std::uint32_t config_address = 0;
};

class PciRoot : public std::enable_shared_from_this<PciRoot>,
                public StateComponent<PciRoot, PciRootState> {
public:
    static constexpr std::uint8_t kSlots = 32;
    static constexpr std::uint64_t kConfigPort = 0xcf8;  // CONFIG_ADDRESS; CONFIG_DATA at 0xcfc
    static constexpr std::uint64_t kConfigPorts = 8;
    static constexpr std::uint64_t kEcamBusSize = std::uint64_t{1} << 20;
    static constexpr std::uint32_t kIntxGsiBase = 16;
    static constexpr std::uint32_t kIntxGsiCount = 8;
    // Host bridge identity: Red Hat's vendor ID 0x1b36 with device 0x0008, the IDs QEMU gives its
    // generic PCIe host bridge, so guests see a host bridge they already know and apply no quirk
    // to; class 06/00/00 (host bridge) also passes Linux's type 1 sanity check.
    static constexpr std::uint16_t kHostBridgeVendor = 0x1b36;
    static constexpr std::uint16_t kHostBridgeDevice = 0x0008;

    // Windows must be non-empty (except `io`), must not wrap, and mmio32 must end at or
    // below 4 GiB and io at or below 64 KiB.
    static Result<std::shared_ptr<PciRoot>> create(const PciRootConfig& config);

    // Puts `device` in the lowest free slot (or `slot`, 1-31) and places its BARs, largest first,
    // each naturally aligned in the window of its kind. Sets Interrupt Line to the slot's GSI for
    // the device's pin. Fails (changing nothing) when the slot is taken or a window is full.
    // Call before the vCPUs run.
    Result<std::uint8_t> add_device(std::shared_ptr<PciDevice> device);
    Result<std::uint8_t> add_device(std::shared_ptr<PciDevice> device, std::uint8_t slot);
    // The slot the next add_device(device) takes; nullopt when the bus is full. Lets the machine
    // create the device's IrqLine (intx_gsi) before the device exists.
    std::optional<std::uint8_t> free_slot() const;

    // BusDevices for the machine to register (each keeps this root alive):
    //   config_io():  port bus at kConfigPort, length kConfigPorts;
    //   ecam():       MMIO bus at the ECAM base, length kEcamBusSize * buses (bus 0 populated);
    //   mmio32_window() / mmio64_window(): MMIO bus at config.mmio32 / config.mmio64;
    //   io_window():  port bus at config.io (nullptr without one).
    // A window access reaches the BAR containing it when the device decodes that space
    // (Command Memory / I/O Space); unclaimed reads return all-ones, writes are dropped, both are
    // counted (unclaimed_accesses()).
    std::shared_ptr<BusDevice> config_io();
    std::shared_ptr<BusDevice> ecam();
    std::shared_ptr<BusDevice> mmio32_window();
    std::shared_ptr<BusDevice> mmio64_window();
    std::shared_ptr<BusDevice> io_window();

    // The GSI behind (slot, pin) per the swizzle above; pin None gives nullopt.
    static std::optional<std::uint32_t> intx_gsi(std::uint8_t slot, PciInterruptPin pin);
    // All four pins of every occupied device slot (not the host bridge), for ACPI _PRT.
    std::vector<PciIntxRoute> intx_routes() const;

    const PciRootConfig& config() const { return m_config; }
    std::uint64_t unclaimed_accesses() const { return m_unclaimed.load(); }

    // Config cycles by (bus, device, function, register): what CF8/CFC and ECAM decode to. The
    // access must be 1, 2 or 4 bytes within one dword; other reads return all-ones.
    void config_read(std::uint8_t bus, std::uint8_t device, std::uint8_t function,
                     std::uint16_t reg, std::span<std::uint8_t> data);
    void config_write(std::uint8_t bus, std::uint8_t device, std::uint8_t function,
                      std::uint16_t reg, std::span<const std::uint8_t> data);

    // Device(PCI0) and Device(PRES) (pci_host_bridge_acpi.h) for this root: the ECAM is the
    // placement's first MMIO range (segment 0, buses 0 to size / 1 MiB - 1), the windows are the
    // root's own, the _PRT lists intx_routes() (so: after the devices were added).
    std::vector<acpi::Aml> acpi_devices(const Placement& placement) const override;

    PciRootState save_state() const;
    // Call after the devices restored their config spaces: re-decodes every BAR (no bar_moved()).
    void restore_state(const PciRootState& state);

private:
    class ConfigIo;
    class Ecam;
    class Window;

    struct Slot {
        std::shared_ptr<PciDevice> device;
        // Per BAR: the address last reported decoded (bar_moved's old_address).
        std::array<std::uint64_t, PciConfigSpace::kNumBars> decoded{};
    };
    struct BarRoute {
        std::uint64_t base;
        std::uint64_t size;
        PciDevice* device;  // owned by m_slots; devices are never removed
        std::uint8_t slot;
        int bar;
        bool io;
    };

    explicit PciRoot(const PciRootConfig& config);
    void config_io_read(std::uint64_t offset, std::span<std::uint8_t> data);
    void config_io_write(std::uint64_t offset, std::span<const std::uint8_t> data);
    // Window accesses at absolute address `address` (memory or port space).
    void window_read(bool io, std::uint64_t address, std::span<std::uint8_t> data);
    void window_write(bool io, std::uint64_t address, std::span<const std::uint8_t> data);
    std::optional<BarRoute> find_route(bool io, std::uint64_t address, std::size_t size) const;
    PciDevice* device_at(std::uint8_t bus, std::uint8_t device, std::uint8_t function) const;
    // Re-decodes slot `slot`'s BARs after a config write and calls bar_moved() for decoded BARs
    // whose address changed. With `report` false (placement, restore) the current addresses are
    // taken as known to the device instead. Caller holds m_config_mutex.
    void refresh_slot(std::uint8_t slot, bool report);

    const PciRootConfig m_config;
    mutable std::mutex m_config_mutex;
    std::uint32_t m_config_address = 0;  // CONFIG_ADDRESS, under m_config_mutex
    std::array<Slot, kSlots> m_slots;    // slot 0: the host bridge; filled before vCPUs run
    std::uint64_t m_next_mmio32;
    std::uint64_t m_next_mmio64;
    std::uint64_t m_next_io;

    mutable std::shared_mutex m_routes_mutex;
    std::vector<BarRoute> m_routes;  // decoded, enabled BARs

    std::atomic<std::uint64_t> m_unclaimed{0};
};

template <typename Ar>
void persist(Ar& ar, PciRootState& s) {
    ar(s.config_address);
}

}  // namespace vireo
