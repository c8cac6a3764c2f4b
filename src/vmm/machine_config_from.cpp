#include "vmm/machine_config_from.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "api/api_parser.h"

namespace vireo {

namespace {

// The command line a guest gets when PUT /boot-source has no boot_args: the serial console,
// reboot through the keyboard controller (what SendCtrlAltDel ends in), panic=1 like
// Firecracker; Firecracker's own default also switches off PCI and modules, which vireo's
// virtio-pci devices and Debian's modular kernels need.
constexpr const char* kApiDefaultCmdline = "console=ttyS0 reboot=k panic=1";

}  // namespace

std::vector<const Drive*> drives_in_disk_order(const VmConfig& config) {
    // Firecracker attaches the root device first, so it is /dev/vda.
    std::vector<const Drive*> out;
    for (const Drive& d : config.drives) {
        if (d.is_root_device) {
            out.push_back(&d);
        }
    }
    for (const Drive& d : config.drives) {
        if (!d.is_root_device) {
            out.push_back(&d);
        }
    }
    return out;
}

Result<MachineConfig> machine_config_from(const VmConfig& config, bool boot_timer) {
    if (!config.boot_source) {
        return Error("no boot source: PUT /boot-source first");
    }
    MachineConfig m;
    m.kernel_path = config.boot_source->kernel_image_path;
    m.initrd_path = config.boot_source->initrd_path.value_or("");
    m.cmdline = config.boot_source->boot_args.value_or(kApiDefaultCmdline);
    // Firecracker's usual boot args carry i8042.nopnp; with vireo's ACPI-described keyboard that
    // makes Linux's i8042 probe fail, and SendCtrlAltDel could never reach the guest.
    if (const auto at = m.cmdline.find("i8042.nopnp"); at != std::string::npos) {
        spdlog::warn(
            "boot_args: dropping i8042.nopnp (vireo describes its keyboard in ACPI; "
            "without that the guest cannot receive SendCtrlAltDel)");
        m.cmdline.erase(at, std::string_view("i8042.nopnp").size());
    }
    m.cpus = config.machine_config.vcpu_count;
    m.memory = config.machine_config.mem_size_mib << 20;
    m.track_dirty_pages = config.machine_config.track_dirty_pages;
    m.smt = config.machine_config.smt;
    m.hugetlb = config.machine_config.huge_pages == HugePages::Hugetlbfs2M;
    m.memfd = config.machine_config.memory_backend == MemoryBacking::Memfd;
    for (const Drive* d : drives_in_disk_order(config)) {
        DiskConfig disk;
        disk.path = d->path_on_host;
        disk.read_only = d->is_read_only;
        disk.serial = d->drive_id.substr(0, 20);
        disk.flush = d->cache_type == CacheType::Writeback;
        if (d->io_engine) {
            disk.engine = *d->io_engine == IoEngine::Async ? BlockEngineKind::IoUring
                                                           : BlockEngineKind::ThreadPool;
        }
        disk.rate_limiter = d->rate_limiter.value_or(RateLimiterConfig{});
        m.disks.push_back(disk);
        if (d->is_root_device) {
            m.cmdline += d->partuuid ? fmt::format(" root=PARTUUID={}", *d->partuuid)
                                     : std::string(" root=/dev/vda");
            m.cmdline += d->is_read_only ? " ro" : " rw";
        }
    }
    for (const NetworkInterface& n : config.network_interfaces) {
        NetConfig net;
        net.tap = n.host_dev_name;
        if (n.guest_mac) {
            net.mac = MacAddress(*n.guest_mac);
        }
        net.rx_rate_limiter = n.rx_rate_limiter.value_or(RateLimiterConfig{});
        net.tx_rate_limiter = n.tx_rate_limiter.value_or(RateLimiterConfig{});
        m.nets.push_back(net);
    }
    if (config.entropy && config.entropy->rate_limiter) {
        m.entropy_rate_limiter = *config.entropy->rate_limiter;
    }
    if (config.balloon) {
        // Checked again here: machine-config may have shrunk RAM after PUT /balloon.
        if (auto fits = validate_balloon_target(config.balloon->amount_mib,
                                                config.machine_config.mem_size_mib);
            !fits) {
            return fits.error();
        }
        m.balloon = *config.balloon;
    }
    if (boot_timer) {
        m.cmdline += " vireo.boot_timer";
    }
    if (m.disks.size() > kMaxDisks || m.nets.size() > kMaxNets) {
        return Error(
            fmt::format("at most {} drives and {} network interfaces", kMaxDisks, kMaxNets));
    }
    return m;
}

}  // namespace vireo
