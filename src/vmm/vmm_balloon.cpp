// The VMM's balloon requests (vmm_controller.h), Firecracker's semantics: PUT /balloon configures
// the device before boot; PATCH /balloon moves its target and PATCH /balloon/statistics its
// polling interval; GET /balloon and GET /balloon/statistics read it. The stored configuration
// (m_config.balloon) follows every change, so GET /vm/config and a snapshot's configuration
// describe the device as it is. Every target is checked against the guest's RAM: here, again at
// InstanceStart (machine_config_from: machine-config may shrink after the PUT), and in a config
// file.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "api/api_parser.h"
#include "machine/machine.h"
#include "vmm/vmm_checks.h"
#include "vmm/vmm_controller.h"

namespace vireo {

namespace {

constexpr const char* kNoBalloon =
    "no balloon device (PUT /balloon configures one before InstanceStart)";

}  // namespace

ApiResponse VmmController::put_balloon(const BalloonConfig& r) {
    if (m_state != InstanceState::NotStarted) {
        return ApiResponse::bad_request(not_allowed("PUT /balloon", m_state));
    }
    if (auto fits = validate_balloon_target(r.amount_mib, m_config.machine_config.mem_size_mib);
        !fits) {
        return ApiResponse::bad_request(fits.error().message());
    }
    m_config.balloon = r;
    return ApiResponse::no_content();
}

ApiResponse VmmController::patch_balloon(const BalloonUpdate& r) {
    if (!m_config.balloon) {
        return ApiResponse::bad_request(kNoBalloon);
    }
    if (m_state == InstanceState::NotStarted) {
        return ApiResponse::bad_request(
            "PATCH /balloon is only allowed once the VM runs; before InstanceStart, PUT /balloon "
            "with the new amount_mib");
    }
    if (auto refused = refuse_during_migration("PATCH /balloon")) {
        return *refused;
    }
    if (auto fits = validate_balloon_target(r.amount_mib, m_config.machine_config.mem_size_mib);
        !fits) {
        return ApiResponse::bad_request(fits.error().message());
    }
    auto* balloon = m_machine->balloon();
    if (balloon == nullptr) {
        return ApiResponse::internal_error("the VM has no balloon device");
    }
    balloon->set_target_mib(r.amount_mib);
    m_config.balloon->amount_mib = r.amount_mib;
    spdlog::info("instance {}: balloon target {} MiB", m_options.id, r.amount_mib);
    return ApiResponse::no_content();
}

ApiResponse VmmController::get_balloon() const {
    if (!m_config.balloon) {
        return ApiResponse::bad_request(kNoBalloon);
    }
    if (m_state != InstanceState::NotStarted) {
        if (auto* balloon = m_machine->balloon()) {
            return ApiResponse::ok(balloon->config());  // the current target
        }
    }
    return ApiResponse::ok(*m_config.balloon);
}

ApiResponse VmmController::get_balloon_stats() const {
    if (!m_config.balloon) {
        return ApiResponse::bad_request(kNoBalloon);
    }
    if (m_state == InstanceState::NotStarted) {
        return ApiResponse::bad_request(
            "GET /balloon/statistics: there are no statistics before the VM runs");
    }
    auto* balloon = m_machine->balloon();
    if (balloon == nullptr) {
        return ApiResponse::internal_error("the VM has no balloon device");
    }
    auto stats = balloon->stats();
    if (!stats) {
        // Statistics are off (stats_polling_interval_s 0 when the device was built).
        return ApiResponse::bad_request(stats.error().message());
    }
    return ApiResponse::ok(std::move(stats).value());
}

ApiResponse VmmController::patch_balloon_stats(const BalloonStatsUpdate& r) {
    if (!m_config.balloon) {
        return ApiResponse::bad_request(kNoBalloon);
    }
    if (m_state != InstanceState::NotStarted) {
        if (auto refused = refuse_during_migration("PATCH /balloon/statistics")) {
            return *refused;
        }
        auto* balloon = m_machine->balloon();
        if (balloon == nullptr) {
            return ApiResponse::internal_error("the VM has no balloon device");
        }
        // Switching statistics on or off after boot is the device's error.
        if (auto set = balloon->set_stats_interval(r.stats_polling_interval_s); !set) {
            return ApiResponse::bad_request(set.error().message());
        }
        spdlog::info("instance {}: balloon statistics every {} s", m_options.id,
                     r.stats_polling_interval_s);
    }
    m_config.balloon->stats_polling_interval_s = r.stats_polling_interval_s;
    return ApiResponse::no_content();
}

}  // namespace vireo
