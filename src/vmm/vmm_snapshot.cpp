// PUT /snapshot/create and PUT /snapshot/load for the VMM controller.
//
// Create (VM paused): the memory file first (Full: every non-zero page, zero pages as holes;
// Diff: exactly the pages written since the previous snapshot), then the state file, written
// atomically, so a state file only ever exists beside a complete memory file.
//
// Load (before anything else is configured): the state file is read and checked whole (magic,
// version, length, CRC, caps) before anything is built; its configuration, with the request's
// overrides applied, builds the same hardware (drive paths from the state file must be regular
// files unless allow_block_devices: api/snapshot_paths.h); RAM maps the memory file
// copy-on-write, or reads it up front with eager_memory or when someone other than vireo's user
// could truncate it (memory_file_copy_reason); every component's state goes back and the VM is
// Paused, or Running with resume_vm. Any failure leaves the controller exactly as it was: still
// "Not started", nothing half-built.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "api/api_json.h"
#include "api/config_file.h"
#include "api/snapshot_paths.h"
#include "arch/x86_64/memory_layout.h"
#include "base/file_open.h"
#include "base/unique_fd.h"
#include "snapshot/memory_file.h"
#include "snapshot/snapshot_file.h"
#include "vmm/machine_config_from.h"
#include "vmm/vmm_controller.h"

namespace vireo {

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point start) {
    return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

}  // namespace

ApiResponse VmmController::create_snapshot(const SnapshotCreateParams& p) {
    if (m_state != InstanceState::Paused) {
        return ApiResponse::bad_request(
            fmt::format("PUT /snapshot/create needs a paused VM (PATCH /vm Paused first); the VM "
                        "is '{}'",
                        m_state == InstanceState::Running ? "Running" : "Not started"));
    }
    const bool diff = p.snapshot_type == SnapshotType::Diff;
    if (diff && !m_config.machine_config.track_dirty_pages) {
        return ApiResponse::bad_request(
            "a Diff snapshot needs dirty page tracking: machine-config track_dirty_pages (or "
            "snapshot/load's track_dirty_pages)");
    }
    const auto start = Clock::now();
    auto contents = m_machine->save_state();
    if (!contents) {
        return ApiResponse::failure(contents.error().wrap("snapshot"));
    }
    contents->vireo_version = fmt::format("vireo {}", VIREO_VERSION);
    contents->config = to_json(m_config);

    Result<MemoryFileStats> written = Error("unreachable");
    if (diff) {
        auto dirty = m_machine->take_dirty_pages();
        if (!dirty) {
            return ApiResponse::failure(dirty.error().wrap("snapshot"));
        }
        written = write_memory_diff(p.mem_file_path, m_machine->memory(), *dirty);
    } else {
        written = write_memory_file(p.mem_file_path, m_machine->memory());
        if (written && m_config.machine_config.track_dirty_pages) {
            // The next Diff is relative to this snapshot: forget what was dirty before it.
            if (auto dirty = m_machine->take_dirty_pages(); !dirty) {
                return ApiResponse::failure(dirty.error().wrap("snapshot"));
            }
        }
    }
    if (!written) {
        return ApiResponse::failure(
            written.error().wrap(fmt::format("snapshot memory file {}", p.mem_file_path)));
    }
    if (auto r = write_snapshot_file(p.snapshot_path, *contents); !r) {
        return ApiResponse::failure(
            r.error().wrap(fmt::format("snapshot state file {}", p.snapshot_path)));
    }
    spdlog::info(
        "instance {}: {} snapshot in {:.1f} ms: state {}, memory {} ({} of {} bytes written)",
        m_options.id, diff ? "Diff" : "Full", ms_since(start), p.snapshot_path, p.mem_file_path,
        written->bytes_written, written->apparent_size);
    return ApiResponse::no_content();
}

ApiResponse VmmController::load_snapshot(const SnapshotLoadParams& p) {
    if (m_state != InstanceState::NotStarted) {
        return ApiResponse::bad_request(
            "PUT /snapshot/load is only allowed before the VM starts (this process already "
            "runs a VM)");
    }
    if (m_config.boot_source || !m_config.drives.empty() || !m_config.network_interfaces.empty() ||
        m_config.balloon) {
        return ApiResponse::bad_request(
            "PUT /snapshot/load is not allowed after configuring boot source, drives, network "
            "interfaces or a balloon: the snapshot brings its own");
    }
    const auto start = Clock::now();
    auto contents = read_snapshot_file(p.snapshot_path);
    if (!contents) {
        return ApiResponse::failure(contents.error().wrap("snapshot/load"));
    }
    auto saved = parse_config_file(contents->config);
    if (!saved) {
        return ApiResponse::failure(
            saved.error().wrap("snapshot/load: the state file's configuration"));
    }
    VmConfig config = std::move(saved).value();
    if (contents->format_version < 2) {
        // Written before cache_type and io_engine were acted on: that vireo offered every disk
        // a flush and picked the engine itself, whatever the drive said (snapshot_file.h).
        for (Drive& d : config.drives) {
            d.cache_type = CacheType::Writeback;
            d.io_engine.reset();
        }
    }
    if (auto r = apply_overrides(config, p.network_overrides, p.drive_overrides, "snapshot/load");
        !r) {
        return ApiResponse::bad_request(r.error().message());
    }
    if (auto checked = check_snapshot_drive_paths(config, p); !checked) {
        return ApiResponse::failure(checked.error().wrap("snapshot/load"));
    }
    config.machine_config.track_dirty_pages = p.track_dirty_pages;
    // This process's logger and metrics stay; the snapshot's were the old process's.
    config.logger = m_config.logger;
    config.metrics = m_config.metrics;
    auto machine_config = machine_config_from(config, false);
    if (!machine_config) {
        return ApiResponse::failure(machine_config.error().wrap("snapshot/load"));
    }

    struct stat st {};
    auto fd = open_regular_file(p.mem_file_path, O_RDONLY, &st);
    if (!fd) {
        return ApiResponse::failure(
            fd.error().wrap("snapshot/load: memory file " + p.mem_file_path));
    }
    bool eager = p.eager_memory;
    if (!eager) {
        if (const std::string why = memory_file_copy_reason(st, ::geteuid()); !why.empty()) {
            spdlog::info(
                "snapshot/load: copying the memory file {} instead of mapping it: {} (a mapped "
                "file that shrinks later would crash vireo)",
                p.mem_file_path, why);
            eager = true;
        }
    }
    // Huge pages and a memfd (memory_backend "Memfd") cannot map a file copy-on-write: their
    // RAM is read in.
    eager = eager || machine_config->hugetlb || machine_config->memfd;
    const auto regions = layout::ram_regions(machine_config->memory);
    auto memory = GuestMemory::create_from_file(regions, fd->get(), eager,
                                                MemoryOptions{.memfd = machine_config->memfd,
                                                              .hugepages = false,
                                                              .hugetlb = machine_config->hugetlb});
    if (!memory) {
        return ApiResponse::failure(
            memory.error().wrap(fmt::format("snapshot/load: memory file {}", p.mem_file_path)));
    }
    auto machine =
        Machine::restore(m_accel, *machine_config, m_console, std::move(memory).value(), *contents);
    if (!machine) {
        return ApiResponse::failure(machine.error().wrap("snapshot/load"));
    }
    m_config = std::move(config);
    m_machine = std::move(machine).value();
    m_state = InstanceState::Paused;
    spdlog::info("instance {}: restored from {} ({}) in {:.1f} ms{}", m_options.id, p.snapshot_path,
                 contents->vireo_version, ms_since(start), eager ? ", memory read eagerly" : "");
    start_machine_thread();
    if (p.resume_vm) {
        return set_state(VmStateRequest::Resumed);
    }
    return ApiResponse::no_content();
}

}  // namespace vireo
