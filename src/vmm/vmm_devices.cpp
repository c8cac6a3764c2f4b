// The VMM's device requests (vmm_controller.h): PUT and PATCH of drives and network interfaces,
// PUT /entropy. Before boot they edit the configuration InstanceStart builds the machine from;
// after boot the PATCHes change the running devices.
#include <algorithm>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "machine/machine.h"
#include "vmm/machine_config_from.h"
#include "vmm/vmm_checks.h"
#include "vmm/vmm_controller.h"

namespace vireo {

namespace {

std::string describe(const RateLimiterConfig& c) {
    const auto bucket = [](const std::optional<BucketConfig>& b, const char* unit) {
        return b ? fmt::format("{} {} per {} ms (burst {})", b->size, unit, b->refill_time_ms,
                               b->one_time_burst)
                 : std::string("unlimited");
    };
    return fmt::format("bandwidth {}, ops {}", bucket(c.bandwidth, "bytes"), bucket(c.ops, "ops"));
}

}  // namespace

ApiResponse VmmController::put_drive(const Drive& r) {
    if (m_state != InstanceState::NotStarted) {
        return ApiResponse::bad_request(not_allowed("PUT /drives", m_state));
    }
    if (!regular_file(r.path_on_host)) {
        return ApiResponse::bad_request(
            fmt::format("drive {}: {}: no such file", r.drive_id, r.path_on_host));
    }
    for (const Drive& d : m_config.drives) {
        if (r.is_root_device && d.is_root_device && d.drive_id != r.drive_id) {
            return ApiResponse::bad_request(fmt::format(
                "drive {}: drive {} is already the root device", r.drive_id, d.drive_id));
        }
    }
    auto it = std::find_if(m_config.drives.begin(), m_config.drives.end(),
                           [&](const Drive& d) { return d.drive_id == r.drive_id; });
    if (it != m_config.drives.end()) {
        *it = r;
    } else if (m_config.drives.size() >= kMaxDisks) {
        return ApiResponse::bad_request(fmt::format("at most {} drives", kMaxDisks));
    } else {
        m_config.drives.push_back(r);
    }
    return ApiResponse::no_content();
}

ApiResponse VmmController::patch_drive(const PartialDrive& r) {
    auto it = std::find_if(m_config.drives.begin(), m_config.drives.end(),
                           [&](const Drive& d) { return d.drive_id == r.drive_id; });
    if (it == m_config.drives.end()) {
        return ApiResponse::bad_request(fmt::format("no drive {}", r.drive_id));
    }
    if (m_state == InstanceState::NotStarted) {
        if (r.rate_limiter) {
            return ApiResponse::bad_request(fmt::format(
                "drive {}: a rate_limiter PATCH is only allowed once the VM runs; before "
                "InstanceStart, PUT the drive with its rate_limiter",
                r.drive_id));
        }
        if (r.path_on_host) {
            if (!regular_file(*r.path_on_host)) {
                return ApiResponse::bad_request(
                    fmt::format("drive {}: {}: no such file", r.drive_id, *r.path_on_host));
            }
            it->path_on_host = *r.path_on_host;
        }
        return ApiResponse::no_content();
    }
    if (auto refused = refuse_during_migration("PATCH /drives")) {
        return *refused;
    }
    const auto order = drives_in_disk_order(m_config);
    const auto index =
        static_cast<std::size_t>(std::find(order.begin(), order.end(), &*it) - order.begin());
    RateLimiter* limiter = nullptr;
    if (r.rate_limiter) {
        limiter = m_machine->rate_limiter(Machine::LimitedDevice::Disk, index);
        if (limiter == nullptr) {
            return ApiResponse::failure(
                Error(fmt::format("drive {}: the disk has no rate limiter", r.drive_id)));
        }
    }
    if (r.path_on_host) {
        if (auto swapped = m_machine->replace_disk(index, *r.path_on_host); !swapped) {
            return ApiResponse::failure(swapped.error().wrap(fmt::format("drive {}", r.drive_id)));
        }
        it->path_on_host = *r.path_on_host;
        spdlog::info("drive {}: now {}", r.drive_id, *r.path_on_host);
    }
    if (limiter != nullptr) {
        limiter->update(*r.rate_limiter);
        it->rate_limiter = updated(it->rate_limiter, *r.rate_limiter);
        spdlog::info("drive {}: rate limiter {}", r.drive_id, describe(*it->rate_limiter));
    }
    return ApiResponse::no_content();
}

ApiResponse VmmController::put_network_interface(const NetworkInterface& r) {
    if (m_state != InstanceState::NotStarted) {
        return ApiResponse::bad_request(not_allowed("PUT /network-interfaces", m_state));
    }
    for (const NetworkInterface& n : m_config.network_interfaces) {
        if (n.iface_id == r.iface_id) {
            continue;
        }
        if (n.host_dev_name == r.host_dev_name) {
            return ApiResponse::bad_request(
                fmt::format("tap {} is already used by interface {}", r.host_dev_name, n.iface_id));
        }
        if (r.guest_mac && n.guest_mac == r.guest_mac) {
            return ApiResponse::bad_request(
                fmt::format("that guest MAC is already used by interface {}", n.iface_id));
        }
    }
    auto it = std::find_if(m_config.network_interfaces.begin(), m_config.network_interfaces.end(),
                           [&](const NetworkInterface& n) { return n.iface_id == r.iface_id; });
    if (it != m_config.network_interfaces.end()) {
        *it = r;
    } else if (m_config.network_interfaces.size() >= kMaxNets) {
        return ApiResponse::bad_request(fmt::format("at most {} network interfaces", kMaxNets));
    } else {
        m_config.network_interfaces.push_back(r);
    }
    return ApiResponse::no_content();
}

ApiResponse VmmController::patch_network_interface(const PartialNetworkInterface& r) {
    auto it = std::find_if(m_config.network_interfaces.begin(), m_config.network_interfaces.end(),
                           [&](const NetworkInterface& n) { return n.iface_id == r.iface_id; });
    if (it == m_config.network_interfaces.end()) {
        return ApiResponse::bad_request(fmt::format("no network interface {}", r.iface_id));
    }
    if (m_state == InstanceState::NotStarted) {
        return ApiResponse::bad_request(fmt::format(
            "network interface {}: PATCH is only allowed once the VM runs; before InstanceStart, "
            "PUT the interface with its rate limiters",
            r.iface_id));
    }
    if (auto refused = refuse_during_migration("PATCH /network-interfaces")) {
        return *refused;
    }
    // NICs are built in the order of the configuration's list.
    const auto index = static_cast<std::size_t>(it - m_config.network_interfaces.begin());
    RateLimiter* rx = m_machine->rate_limiter(Machine::LimitedDevice::NetRx, index);
    RateLimiter* tx = m_machine->rate_limiter(Machine::LimitedDevice::NetTx, index);
    if (rx == nullptr || tx == nullptr) {
        return ApiResponse::failure(
            Error(fmt::format("network interface {}: no rate limiters", r.iface_id)));
    }
    if (r.rx_rate_limiter) {
        rx->update(*r.rx_rate_limiter);
        it->rx_rate_limiter = updated(it->rx_rate_limiter, *r.rx_rate_limiter);
        spdlog::info("network interface {}: rx rate limiter {}", r.iface_id,
                     describe(*it->rx_rate_limiter));
    }
    if (r.tx_rate_limiter) {
        tx->update(*r.tx_rate_limiter);
        it->tx_rate_limiter = updated(it->tx_rate_limiter, *r.tx_rate_limiter);
        spdlog::info("network interface {}: tx rate limiter {}", r.iface_id,
                     describe(*it->tx_rate_limiter));
    }
    return ApiResponse::no_content();
}

ApiResponse VmmController::put_entropy(const EntropyDevice& r) {
    if (m_state != InstanceState::NotStarted) {
        return ApiResponse::bad_request(not_allowed("PUT /entropy", m_state));
    }
    m_config.entropy = r;  // vireo machines always have a virtio-rng
    return ApiResponse::no_content();
}

}  // namespace vireo
