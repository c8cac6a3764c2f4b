// The PCI side of the machine: the root bus with its config mechanisms and MMIO windows, and the
// virtio devices the configuration asks for, in slot order disks, NICs, console, entropy (so
// disks are vda, vdb, ... in command-line order).
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "arch/x86_64/memory_layout.h"
#include "backends/block/block_file.h"
#include "backends/net/tap.h"
#include "devices/legacy/boot_timer.h"
#include "devices/virtio/virtio_balloon.h"
#include "devices/virtio/virtio_blk.h"
#include "devices/virtio/virtio_net.h"
#include "devices/virtio/virtio_rng.h"
#include "machine/machine.h"

namespace vireo {

namespace {

std::string disk_name(std::size_t index) {
    // vda..vdz is enough for kMaxDisks.
    return fmt::format("vd{}", static_cast<char>('a' + index));
}

}  // namespace

Result<void> Machine::setup_pci(const MachineConfig& config) {
    PciRootConfig rc;
    rc.mmio32 = {layout::kPciMmio32Start, layout::kPciMmio32Size};
    // The 64-bit window only where every x86-64 guest can address it (36 physical address bits
    // is the architectural minimum); vireo's own devices use 32-bit BARs.
    if (layout::pci_mmio64_end(config.memory) <= (std::uint64_t{1} << 36)) {
        rc.mmio64 = {layout::pci_mmio64_base(config.memory), layout::kPciMmio64Size};
    }
    auto root = PciRoot::create(rc);
    if (!root) {
        return root.error().wrap("PCI");
    }
    m_pci = std::move(root.value());

    m_disks = config.disks;
    for (std::size_t i = 0; i < config.disks.size(); ++i) {
        const DiskConfig& d = config.disks[i];
        auto file = BlockFile::open(d.path, {.read_only = d.read_only,
                                             .direct = d.direct,
                                             .engine = d.engine,
                                             .defer_lock = config.defer_disk_locks});
        if (!file) {
            return file.error();  // names the image and the problem
        }
        if ((*file)->engine() != BlockEngineKind::IoUring) {
            spdlog::info("disk {}: using the thread pool ({})", d.path,
                         d.engine == BlockEngineKind::ThreadPool ? "io_engine Sync"
                                                                 : (*file)->fallback_reason());
        }
        // One request queue per vCPU (as QEMU does): completions interrupt the CPU that asked.
        const auto queues = static_cast<std::uint16_t>(
            std::min<std::uint32_t>(config.cpus, virtio::VirtioBlk::kMaxQueues));
        auto blk = virtio::VirtioBlk::create(std::move(file.value()), d.serial, disk_name(i),
                                             queues, d.flush);
        if (!blk) {
            return blk.error().wrap(fmt::format("disk {}", d.path));
        }
        auto limiter = RateLimiter::create(d.rate_limiter);
        if (!limiter) {
            return limiter.error().wrap(fmt::format("disk {}", d.path));
        }
        (*blk)->set_rate_limiter(std::move(limiter.value()));
        if (auto a = add_virtio(std::move(blk.value())); !a) {
            return a;
        }
    }
    for (const NetConfig& n : config.nets) {
        auto tap = Tap::open(n.tap);
        if (!tap) {
            return tap.error();  // names the interface and the problem
        }
        if (tap->created()) {
            if (auto up = tap->set_up(); !up) {
                return up.error().wrap(fmt::format("net tap {}", n.tap));
            }
        }
        auto net = virtio::VirtioNet::create(std::move(tap.value()),
                                             n.mac ? *n.mac : MacAddress::random_local());
        if (!net) {
            return net.error().wrap(fmt::format("net tap {}", n.tap));
        }
        auto rx = RateLimiter::create(n.rx_rate_limiter);
        auto tx = RateLimiter::create(n.tx_rate_limiter);
        if (!rx || !tx) {
            return (!rx ? rx.error() : tx.error()).wrap(fmt::format("net tap {}", n.tap));
        }
        (*net)->set_rate_limiters(std::move(rx.value()), std::move(tx.value()));
        if (auto a = add_virtio(std::move(net.value())); !a) {
            return a;
        }
    }
    if (config.console == ConsoleDevice::Virtio) {
        auto console = virtio::VirtioConsole::create([this](std::span<const std::uint8_t> bytes) {
            m_console.write(bytes);
            m_panic.feed(bytes);
        });
        if (!console) {
            return console.error();
        }
        m_virtio_console = console->get();
        if (auto a = add_virtio(std::move(console.value())); !a) {
            return a;
        }
    }
    if (config.boot_timer_start) {
        const auto start = *config.boot_timer_start;
        auto timer = std::make_shared<BootTimer>([start] {
            const auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                                std::chrono::steady_clock::now() - start)
                                .count();
            spdlog::info("Guest-boot-time = {:>8} us {} ms", us, us / 1000);
        });
        if (auto r =
                m_components.add("boot-timer", timer,
                                 {.mmio = {{layout::kBootTimerAddress, BootTimer::kSize, timer}}});
            !r) {
            return r;
        }
    }
    auto rng = std::make_unique<virtio::VirtioRng>();
    auto rng_limiter = RateLimiter::create(config.entropy_rate_limiter);
    if (!rng_limiter) {
        return rng_limiter.error().wrap("entropy device");
    }
    rng->set_rate_limiter(std::move(rng_limiter.value()));
    if (auto r = add_virtio(std::move(rng)); !r) {
        return r;
    }
    if (config.balloon) {
        auto balloon = std::make_unique<virtio::VirtioBalloon>(*config.balloon);
        m_balloon = balloon.get();
        if (auto r = add_virtio(std::move(balloon)); !r) {
            return r;
        }
    }
    // The root after the functions on it: restore walks the registry in order, and the root
    // re-decodes the BARs the functions hold.
    Placement root_place{
        .ports = {{PciRoot::kConfigPort, PciRoot::kConfigPorts, m_pci->config_io()}},
        .mmio = {{layout::kPciEcamStart, layout::kPciEcamSize, m_pci->ecam()},
                 {rc.mmio32.base, rc.mmio32.size, m_pci->mmio32_window()}}};
    if (rc.mmio64.size != 0) {
        root_place.mmio.push_back({rc.mmio64.base, rc.mmio64.size, m_pci->mmio64_window()});
    }
    // The INTx lines, shared among the functions (SharedIrqLine), are the root's.
    for (const auto& route : m_pci->intx_routes()) {
        if (std::find(root_place.gsis.begin(), root_place.gsis.end(), route.gsi) ==
            root_place.gsis.end()) {
            root_place.gsis.push_back(route.gsi);
        }
    }
    return m_components.add("pci-root", m_pci, std::move(root_place));
}

Result<void> Machine::add_virtio(std::unique_ptr<virtio::VirtioDevice> device) {
    const auto slot = m_pci->free_slot();
    if (!slot) {
        return Error(fmt::format("{}: no free PCI slot", device->name()));
    }
    // INTx for drivers that do not enable MSI-X; slots beyond the 8th share GSIs.
    const std::uint32_t gsi = PciRoot::intx_gsi(*slot, PciInterruptPin::IntA).value();
    const std::size_t index = gsi - PciRoot::kIntxGsiBase;
    if (m_shared_irqs.size() <= index) {
        m_shared_irqs.resize(index + 1);
    }
    if (!m_shared_irqs[index]) {
        auto line = m_vm->create_irq_line(gsi);
        if (!line) {
            return line.error();
        }
        m_shared_irqs[index] = std::make_unique<SharedIrqLine>(**line);
        m_irq_lines.push_back(std::move(line.value()));
    }
    m_irq_lines.push_back(m_shared_irqs[index]->add_source());
    auto pci = virtio::VirtioPciDevice::create(std::move(device), m_memory, *m_vm, m_vm.get(),
                                               m_irq_lines.back().get());
    if (!pci) {
        return pci.error();
    }
    std::shared_ptr<virtio::VirtioPciDevice> shared = std::move(pci.value());
    if (auto added = m_pci->add_device(shared, *slot); !added) {
        return added.error();
    }
    // "virtio.N" in slot order: the section names snapshots have always used.
    if (auto r = m_components.add(fmt::format("virtio.{}", m_virtio.size()), shared,
                                  {.pci_slot = static_cast<std::uint8_t>(*slot)});
        !r) {
        return r;
    }
    m_virtio.push_back(std::move(shared));
    return ok();
}

Result<void> Machine::replace_disk(std::size_t index, const std::string& path) {
    if (index >= m_disks.size()) {
        return Error(fmt::format("no disk {}", index));
    }
    auto* blk = dynamic_cast<virtio::VirtioBlk*>(&m_virtio[index]->device());
    if (blk == nullptr) {
        return Error(fmt::format("device {} is not a disk", index));
    }
    const DiskConfig& d = m_disks[index];
    auto file =
        BlockFile::open(path, {.read_only = d.read_only, .direct = d.direct, .engine = d.engine});
    if (!file) {
        return file.error();
    }
    // Through the transport, which holds its lock: a guest reset of the disk cannot run in
    // the middle of the swap (the device thread would be stopped twice).
    auto replaced = m_virtio[index]->with_device(
        [&](virtio::VirtioDevice&) { return blk->replace_file(std::move(file.value())); });
    if (!replaced) {
        return replaced;
    }
    m_disks[index].path = path;
    m_virtio[index]->config_changed();
    return ok();
}

RateLimiter* Machine::rate_limiter(LimitedDevice which, std::size_t index) {
    switch (which) {
        case LimitedDevice::Disk:
            if (index < m_disks.size()) {
                if (auto* blk = dynamic_cast<virtio::VirtioBlk*>(&m_virtio[index]->device())) {
                    return blk->rate_limiter();
                }
            }
            return nullptr;
        case LimitedDevice::NetRx:
        case LimitedDevice::NetTx: {
            std::size_t seen = 0;
            for (auto& d : m_virtio) {
                if (auto* net = dynamic_cast<virtio::VirtioNet*>(&d->device())) {
                    if (seen++ == index) {
                        return which == LimitedDevice::NetRx ? net->rx_rate_limiter()
                                                             : net->tx_rate_limiter();
                    }
                }
            }
            return nullptr;
        }
        case LimitedDevice::Entropy:
            for (auto& d : m_virtio) {
                if (auto* rng = dynamic_cast<virtio::VirtioRng*>(&d->device())) {
                    return rng->rate_limiter();
                }
            }
            return nullptr;
    }
    return nullptr;
}

virtio::VirtioBalloon* Machine::balloon() {
    return m_balloon;
}

void Machine::announce_network() {
    for (auto& d : m_virtio) {
        if (auto* net = dynamic_cast<virtio::VirtioNet*>(&d->device())) {
            if (auto r = net->announce(); !r) {
                spdlog::warn("{}", r.error().message());
            }
        }
    }
}

Result<void> Machine::release_disk_locks() {
    for (std::size_t i = 0; i < m_disks.size(); ++i) {
        if (auto* blk = dynamic_cast<virtio::VirtioBlk*>(&m_virtio[i]->device())) {
            if (auto r = blk->file().release_lock(); !r) {
                return r;
            }
        }
    }
    return ok();
}

Result<void> Machine::retake_disk_locks() {
    for (std::size_t i = 0; i < m_disks.size(); ++i) {
        if (auto* blk = dynamic_cast<virtio::VirtioBlk*>(&m_virtio[i]->device())) {
            if (auto r = blk->file().retake_lock(); !r) {
                return r;
            }
        }
    }
    return ok();
}

}  // namespace vireo
