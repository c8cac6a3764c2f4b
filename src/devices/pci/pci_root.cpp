#include "devices/pci/pci_root.h"

#include "devices/pci/pci_host_bridge_acpi.h"

#include <algorithm>

#include <fmt/format.h>

namespace vireo {

namespace {

// CONFIG_ADDRESS (PCI Local Bus 3.0 §3.2.2.3.2): bit 31 enable, 30:24 reserved (read 0),
// 23:16 bus, 15:11 device, 10:8 function, 7:2 register, 1:0 read 0.
constexpr std::uint32_t kConfigAddressEnable = 1U << 31;
constexpr std::uint32_t kConfigAddressMask = 0x80fffffc;
constexpr std::uint64_t kConfigDataOffset = 4;  // 0xCFC - 0xCF8

constexpr std::uint32_t kClassHostBridge = 0x060000;  // base 06 bridge, sub 00 host, prog-if 00
constexpr std::uint64_t k4GiB = std::uint64_t{1} << 32;
constexpr std::uint64_t kIoSpaceEnd = 0x10000;

void fill_ones(std::span<std::uint8_t> data) {
    std::fill(data.begin(), data.end(), std::uint8_t{0xff});
}

// A config access a real bus can carry: 1, 2 or 4 byte enables within one dword.
bool valid_config_access(std::uint16_t reg, std::size_t size) {
    return (size == 1 || size == 2 || size == 4) && (reg & 3U) + size <= 4 &&
           reg < PciConfigSpace::kSize;
}

bool window_ok(const PciWindow& w, std::uint64_t limit) {
    return w.size != 0 && w.base <= limit && w.size <= limit - w.base;
}

// Rounds `v` up to `align` (a power of two); false on overflow.
bool align_up(std::uint64_t v, std::uint64_t align, std::uint64_t& out) {
    if (v > UINT64_MAX - (align - 1)) {
        return false;
    }
    out = (v + align - 1) & ~(align - 1);
    return true;
}

// The function at 00:00.0: identity only, no BARs, no interrupt.
class HostBridge final : public PciDevice {
public:
    HostBridge()
        : m_config(PciHeader{.vendor_id = PciRoot::kHostBridgeVendor,
                             .device_id = PciRoot::kHostBridgeDevice,
                             .class_code = kClassHostBridge}) {}
    PciConfigSpace& config_space() override { return m_config; }
    void bar_read(int, std::uint64_t, std::span<std::uint8_t> data) override { fill_ones(data); }
    void bar_write(int, std::uint64_t, std::span<const std::uint8_t>) override {}

private:
    PciConfigSpace m_config;
};

}  // namespace

// The BusDevices handed to the machine. Each holds the root alive.
class PciRoot::ConfigIo final : public BusDevice {
public:
    explicit ConfigIo(std::shared_ptr<PciRoot> root) : m_root(std::move(root)) {}
    void read(std::uint64_t offset, std::span<std::uint8_t> data) override {
        m_root->config_io_read(offset, data);
    }
    void write(std::uint64_t offset, std::span<const std::uint8_t> data) override {
        m_root->config_io_write(offset, data);
    }

private:
    std::shared_ptr<PciRoot> m_root;
};

class PciRoot::Ecam final : public BusDevice {
public:
    explicit Ecam(std::shared_ptr<PciRoot> root) : m_root(std::move(root)) {}
    void read(std::uint64_t offset, std::span<std::uint8_t> data) override {
        if (offset >= 256 * kEcamBusSize) {
            fill_ones(data);
            return;
        }
        m_root->config_read(bus(offset), device(offset), function(offset), reg(offset), data);
    }
    void write(std::uint64_t offset, std::span<const std::uint8_t> data) override {
        if (offset < 256 * kEcamBusSize) {
            m_root->config_write(bus(offset), device(offset), function(offset), reg(offset), data);
        }
    }

private:
    static std::uint8_t bus(std::uint64_t off) { return static_cast<std::uint8_t>(off >> 20); }
    static std::uint8_t device(std::uint64_t off) {
        return static_cast<std::uint8_t>((off >> 15) & 0x1f);
    }
    static std::uint8_t function(std::uint64_t off) {
        return static_cast<std::uint8_t>((off >> 12) & 0x7);
    }
    static std::uint16_t reg(std::uint64_t off) { return static_cast<std::uint16_t>(off & 0xfff); }

    std::shared_ptr<PciRoot> m_root;
};

class PciRoot::Window final : public BusDevice {
public:
    Window(std::shared_ptr<PciRoot> root, bool io, std::uint64_t base)
        : m_root(std::move(root)), m_io(io), m_base(base) {}
    // The IoBus only passes accesses inside the registered range, so base + offset cannot wrap.
    void read(std::uint64_t offset, std::span<std::uint8_t> data) override {
        m_root->window_read(m_io, m_base + offset, data);
    }
    void write(std::uint64_t offset, std::span<const std::uint8_t> data) override {
        m_root->window_write(m_io, m_base + offset, data);
    }

private:
    std::shared_ptr<PciRoot> m_root;
    bool m_io;
    std::uint64_t m_base;
};

Result<std::shared_ptr<PciRoot>> PciRoot::create(const PciRootConfig& config) {
    if (!window_ok(config.mmio32, k4GiB)) {
        return Error(fmt::format("pci: 32-bit window {:#x}+{:#x} must be non-empty, below 4 GiB",
                                 config.mmio32.base, config.mmio32.size));
    }
    if (config.mmio64.size != 0) {
        if (!window_ok(config.mmio64, UINT64_MAX)) {
            return Error(fmt::format("pci: 64-bit window {:#x}+{:#x} wraps", config.mmio64.base,
                                     config.mmio64.size));
        }
        const auto& a = config.mmio32;
        const auto& b = config.mmio64;
        if (a.base < b.base + b.size && b.base < a.base + a.size) {
            return Error("pci: the 32-bit and 64-bit windows overlap");
        }
    }
    if (config.io.size != 0 && !window_ok(config.io, kIoSpaceEnd)) {
        return Error(fmt::format("pci: I/O window {:#x}+{:#x} is outside ports 0-0xffff",
                                 config.io.base, config.io.size));
    }
    std::shared_ptr<PciRoot> root(new PciRoot(config));
    root->m_slots[0].device = std::make_shared<HostBridge>();
    return root;
}

PciRoot::PciRoot(const PciRootConfig& config)
    : m_config(config),
      m_next_mmio32(config.mmio32.base),
      m_next_mmio64(config.mmio64.base),
      m_next_io(config.io.base) {}

std::optional<std::uint8_t> PciRoot::free_slot() const {
    std::lock_guard lock(m_config_mutex);
    for (std::uint8_t s = 1; s < kSlots; ++s) {
        if (!m_slots[s].device) {
            return s;
        }
    }
    return std::nullopt;
}

Result<std::uint8_t> PciRoot::add_device(std::shared_ptr<PciDevice> device) {
    const auto slot = free_slot();
    if (!slot) {
        return Error("pci: bus 0 is full (31 devices)");
    }
    return add_device(std::move(device), *slot);
}

Result<std::uint8_t> PciRoot::add_device(std::shared_ptr<PciDevice> device, std::uint8_t slot) {
    if (!device) {
        return Error("pci: no device");
    }
    if (slot == 0 || slot >= kSlots) {
        return Error(fmt::format("pci: slot {} out of range 1-{}", slot, kSlots - 1));
    }
    std::lock_guard lock(m_config_mutex);
    if (m_slots[slot].device) {
        return Error(fmt::format("pci: slot {} is taken", slot));
    }
    PciConfigSpace& config = device->config_space();

    // Largest first keeps natural alignment from wasting space between BARs.
    std::vector<std::pair<int, PciBar>> bars;
    for (int i = 0; i < PciConfigSpace::kNumBars; ++i) {
        if (auto bar = config.bar(i)) {
            bars.emplace_back(i, *bar);
        }
    }
    std::stable_sort(bars.begin(), bars.end(),
                     [](const auto& a, const auto& b) { return a.second.size > b.second.size; });

    // Work on copies of the cursors so that a failure leaves the root untouched.
    std::uint64_t next_mmio32 = m_next_mmio32;
    std::uint64_t next_mmio64 = m_next_mmio64;
    std::uint64_t next_io = m_next_io;
    std::vector<std::pair<int, std::uint64_t>> placed;
    for (const auto& [index, bar] : bars) {
        const PciWindow* window = &m_config.mmio32;
        std::uint64_t* cursor = &next_mmio32;
        if (bar.kind == PciBarKind::Io) {
            if (m_config.io.size == 0) {
                return Error(fmt::format("pci: I/O BAR {} but no I/O window", index));
            }
            window = &m_config.io;
            cursor = &next_io;
        } else if (bar.kind == PciBarKind::Memory64 && m_config.mmio64.size != 0) {
            window = &m_config.mmio64;  // without a 64-bit window, 64-bit BARs go below 4 GiB
            cursor = &next_mmio64;
        }
        std::uint64_t address = 0;
        const std::uint64_t end = window->base + window->size;
        if (!align_up(*cursor, bar.size, address) || address > end || bar.size > end - address) {
            return Error(fmt::format("pci: no room for BAR {} ({:#x} bytes) in window {:#x}+{:#x}",
                                     index, bar.size, window->base, window->size));
        }
        *cursor = address + bar.size;
        placed.emplace_back(index, address);
    }
    for (const auto& [index, address] : placed) {
        if (auto r = config.set_bar_address(index, address); !r) {
            return r.error();  // cannot happen with validated windows
        }
    }
    m_next_mmio32 = next_mmio32;
    m_next_mmio64 = next_mmio64;
    m_next_io = next_io;
    if (const auto gsi = intx_gsi(slot, config.interrupt_pin())) {
        config.set_interrupt_line(static_cast<std::uint8_t>(*gsi));
    }
    m_slots[slot].device = std::move(device);
    refresh_slot(slot, false);
    return slot;
}

std::shared_ptr<BusDevice> PciRoot::config_io() {
    return std::make_shared<ConfigIo>(shared_from_this());
}

std::shared_ptr<BusDevice> PciRoot::ecam() {
    return std::make_shared<Ecam>(shared_from_this());
}

std::shared_ptr<BusDevice> PciRoot::mmio32_window() {
    return std::make_shared<Window>(shared_from_this(), false, m_config.mmio32.base);
}

std::shared_ptr<BusDevice> PciRoot::mmio64_window() {
    if (m_config.mmio64.size == 0) {
        return nullptr;
    }
    return std::make_shared<Window>(shared_from_this(), false, m_config.mmio64.base);
}

std::shared_ptr<BusDevice> PciRoot::io_window() {
    if (m_config.io.size == 0) {
        return nullptr;
    }
    return std::make_shared<Window>(shared_from_this(), true, m_config.io.base);
}

std::optional<std::uint32_t> PciRoot::intx_gsi(std::uint8_t slot, PciInterruptPin pin) {
    if (pin == PciInterruptPin::None || slot >= kSlots) {
        return std::nullopt;
    }
    const auto p = static_cast<std::uint32_t>(pin) - 1;  // INTA# = 0
    return kIntxGsiBase + (slot + p) % kIntxGsiCount;
}

std::vector<PciIntxRoute> PciRoot::intx_routes() const {
    std::lock_guard lock(m_config_mutex);
    std::vector<PciIntxRoute> routes;
    for (std::uint8_t s = 1; s < kSlots; ++s) {
        if (!m_slots[s].device) {
            continue;
        }
        for (std::uint8_t p = 0; p < 4; ++p) {
            routes.push_back({s, p, kIntxGsiBase + (s + p) % kIntxGsiCount});
        }
    }
    return routes;
}

PciDevice* PciRoot::device_at(std::uint8_t bus, std::uint8_t device, std::uint8_t function) const {
    // Only bus 0 exists and every device is single-function (Header Type bit 7 clear), so the
    // guest never looks at functions 1-7 of a present device either.
    if (bus != 0 || function != 0 || device >= kSlots) {
        return nullptr;
    }
    return m_slots[device].device.get();
}

void PciRoot::config_read(std::uint8_t bus, std::uint8_t device, std::uint8_t function,
                          std::uint16_t reg, std::span<std::uint8_t> data) {
    std::lock_guard lock(m_config_mutex);
    PciDevice* d =
        valid_config_access(reg, data.size()) ? device_at(bus, device, function) : nullptr;
    if (d == nullptr) {
        fill_ones(data);
        return;
    }
    d->config_read(reg, data);
}

void PciRoot::config_write(std::uint8_t bus, std::uint8_t device, std::uint8_t function,
                           std::uint16_t reg, std::span<const std::uint8_t> data) {
    std::lock_guard lock(m_config_mutex);
    PciDevice* d =
        valid_config_access(reg, data.size()) ? device_at(bus, device, function) : nullptr;
    if (d == nullptr) {
        return;
    }
    d->config_write(reg, data);
    refresh_slot(device, true);
}

void PciRoot::config_io_read(std::uint64_t offset, std::span<std::uint8_t> data) {
    std::uint32_t address = 0;
    {
        std::lock_guard lock(m_config_mutex);
        address = m_config_address;
    }
    if (offset == 0 && data.size() == 4) {
        for (std::size_t i = 0; i < 4; ++i) {
            data[i] = static_cast<std::uint8_t>(address >> (8 * i));
        }
        return;
    }
    // CONFIG_DATA: byte n of the selected dword at 0xCFC + n. Only a dword access reaches
    // CONFIG_ADDRESS; narrower ones (the old mechanism #2 probe) read all-ones.
    if (offset < kConfigDataOffset || offset >= kConfigPorts ||
        (address & kConfigAddressEnable) == 0) {
        fill_ones(data);
        return;
    }
    const auto byte = static_cast<std::uint16_t>(offset - kConfigDataOffset);
    config_read(static_cast<std::uint8_t>(address >> 16),
                static_cast<std::uint8_t>((address >> 11) & 0x1f),
                static_cast<std::uint8_t>((address >> 8) & 0x7),
                static_cast<std::uint16_t>((address & 0xfc) + byte), data);
}

void PciRoot::config_io_write(std::uint64_t offset, std::span<const std::uint8_t> data) {
    std::uint32_t address = 0;
    {
        std::lock_guard lock(m_config_mutex);
        if (offset == 0 && data.size() == 4) {
            m_config_address = (std::uint32_t{data[0]} | (std::uint32_t{data[1]} << 8) |
                                (std::uint32_t{data[2]} << 16) | (std::uint32_t{data[3]} << 24)) &
                               kConfigAddressMask;
            return;
        }
        address = m_config_address;
    }
    if (offset < kConfigDataOffset || offset >= kConfigPorts ||
        (address & kConfigAddressEnable) == 0) {
        return;
    }
    const auto byte = static_cast<std::uint16_t>(offset - kConfigDataOffset);
    config_write(static_cast<std::uint8_t>(address >> 16),
                 static_cast<std::uint8_t>((address >> 11) & 0x1f),
                 static_cast<std::uint8_t>((address >> 8) & 0x7),
                 static_cast<std::uint16_t>((address & 0xfc) + byte), data);
}

void PciRoot::refresh_slot(std::uint8_t slot, bool report) {
    Slot& s = m_slots[slot];
    PciConfigSpace& config = s.device->config_space();
    const bool memory_on = config.memory_enabled();
    const bool io_on = config.io_enabled();
    struct Move {
        int bar;
        std::uint64_t from;
        std::uint64_t to;
    };
    std::vector<BarRoute> fresh;
    std::vector<Move> moves;
    for (int i = 0; i < PciConfigSpace::kNumBars; ++i) {
        const auto bar = config.bar(i);
        if (!bar) {
            continue;
        }
        const bool io = bar->kind == PciBarKind::Io;
        auto& decoded = s.decoded[static_cast<std::size_t>(i)];
        if (!report) {
            decoded = bar->address;  // placement or restore: the device knows the address
        }
        if (!(io ? io_on : memory_on)) {
            continue;  // not decoded: no route, and moves wait until decoding is back on
        }
        fresh.push_back({bar->address, bar->size, s.device.get(), slot, i, io});
        if (bar->address != decoded) {
            moves.push_back({i, decoded, bar->address});
            decoded = bar->address;
        }
    }
    {
        std::unique_lock lock(m_routes_mutex);
        std::erase_if(m_routes, [slot](const BarRoute& r) { return r.slot == slot; });
        m_routes.insert(m_routes.end(), fresh.begin(), fresh.end());
    }
    for (const auto& m : moves) {
        s.device->bar_moved(m.bar, m.from, m.to);
    }
}

std::optional<PciRoot::BarRoute> PciRoot::find_route(bool io, std::uint64_t address,
                                                     std::size_t size) const {
    std::shared_lock lock(m_routes_mutex);
    for (const auto& r : m_routes) {
        if (r.io == io && address >= r.base && size <= r.size &&
            address - r.base <= r.size - size) {
            return r;
        }
    }
    return std::nullopt;
}

void PciRoot::window_read(bool io, std::uint64_t address, std::span<std::uint8_t> data) {
    const auto route = find_route(io, address, data.size());
    if (!route) {
        m_unclaimed.fetch_add(1, std::memory_order_relaxed);
        fill_ones(data);
        return;
    }
    route->device->bar_read(route->bar, address - route->base, data);
}

void PciRoot::window_write(bool io, std::uint64_t address, std::span<const std::uint8_t> data) {
    const auto route = find_route(io, address, data.size());
    if (!route) {
        m_unclaimed.fetch_add(1, std::memory_order_relaxed);
        return;
    }
    route->device->bar_write(route->bar, address - route->base, data);
}

PciRootState PciRoot::save_state() const {
    std::lock_guard lock(m_config_mutex);
    return PciRootState{m_config_address};
}

void PciRoot::restore_state(const PciRootState& state) {
    std::lock_guard lock(m_config_mutex);
    m_config_address = state.config_address & kConfigAddressMask;
    for (std::uint8_t s = 0; s < kSlots; ++s) {
        if (m_slots[s].device) {
            refresh_slot(s, false);
        }
    }
}

std::vector<acpi::Aml> PciRoot::acpi_devices(const Placement& placement) const {
    if (placement.mmio.empty() || placement.mmio.front().size < kEcamBusSize ||
        placement.mmio.front().size / kEcamBusSize > 256) {
        return {acpi::Aml::failed(Error("PCI root: the first MMIO range must be its ECAM"))};
    }
    const auto& ecam = placement.mmio.front();
    PciHostBridgeDesc d;
    d.ecam = {ecam.base, 0, 0, static_cast<std::uint8_t>(ecam.size / kEcamBusSize - 1)};
    d.mmio32_base = m_config.mmio32.base;
    d.mmio32_size = m_config.mmio32.size;
    d.mmio64_base = m_config.mmio64.base;
    d.mmio64_size = m_config.mmio64.size;
    for (const auto& route : intx_routes()) {
        d.routing.push_back({route.slot, route.pin, route.gsi});
    }
    return pci_host_bridge_aml(d);
}

}  // namespace vireo
