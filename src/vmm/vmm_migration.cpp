// Live migration for the VMM controller (issue 14): PUT /migration/send, /migration/receive,
// /migration/cancel and GET /migration.
//
// The stream runs on a migration thread (seccomp kind "migration": sockets, the dirty log, no
// VM-building calls). Every step that changes the VM runs on the VMM thread through
// run_on_vmm_thread, one at a time with API requests: pausing, saving state, resuming, building
// the destination's VM. While a migration is under way, requests that would change the VM under
// it answer 400.
//
// Source: on the destination's acknowledgement the VM belongs to the destination; this process
// stops the machine and exits 0 saying where it went. Any failure before that leaves the VM as it
// was (migration_sender.h). Destination: a failure discards everything and ends the process
// non-zero with the reason; success leaves a Running VM (Paused when the source acknowledged
// but never sent Commit: see migration_frame.h).
#include <algorithm>
#include <future>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "api/api_json.h"
#include "api/config_file.h"
#include "api/snapshot_paths.h"
#include "arch/x86_64/cpuid.h"
#include "arch/x86_64/memory_layout.h"
#include "migration/migration_channel.h"
#include "migration/migration_receiver.h"
#include "migration/migration_sender.h"
#include "seccomp/seccomp.h"
#include "snapshot/snapshot_file.h"
#include "vmm/machine_config_from.h"
#include "vmm/vmm_migration.h"

namespace vireo {

using migration::MigrationProgress;
using migration::MigrationState;

namespace {

using Clock = std::chrono::steady_clock;

// The longest silence a destination tolerates from its source.
constexpr auto kReceiveIdle = std::chrono::seconds(60);

MigrationInfo to_info(const MigrationProgress& p) {
    MigrationInfo info;
    info.state = migration::migration_state_name(p.state);
    info.role = p.role;
    info.url = p.peer;
    info.iteration = p.iteration;
    info.bytes = p.bytes;
    info.pages = p.pages;
    info.remaining_pages = p.remaining_pages;
    info.dirty_rate_pages_s = p.dirty_rate_pages_s;
    info.bandwidth_mib_s = p.bandwidth_mib_s;
    info.expected_downtime_ms = p.expected_downtime_ms;
    info.downtime_ms = p.downtime_ms;
    info.total_ms = p.total_ms;
    info.throttle_percent = p.throttle_percent;
    if (!p.error.empty()) {
        info.error = p.error;
    }
    return info;
}

}  // namespace

VmmController::Migration::~Migration() {
    if (thread.joinable()) {
        thread.join();
    }
}

// What the sender needs of the VM: the VMM thread does what changes it.
class VmmController::MigrationSourceAdapter final : public migration::MigrationSource {
public:
    explicit MigrationSourceAdapter(VmmController& vmm) : m_vmm(vmm) {}

    const GuestMemory& memory() override { return m_vmm.m_machine->memory(); }

    Result<migration::MigrationConfig> config() override {
        migration::MigrationConfig c;
        auto r = m_vmm.run_on_vmm_thread([&]() -> Result<void> {
            c.config_json = to_json(m_vmm.m_config);
            c.cpuid = m_vmm.m_machine->guest_cpuid();
            c.tsc_khz = m_vmm.m_machine->guest_tsc_khz();
            return ok();
        });
        if (!r) {
            return r.error();
        }
        return c;
    }
    Result<void> set_dirty_log(bool on) override {
        return m_vmm.run_on_vmm_thread(
            [&] { return m_vmm.m_machine->set_migration_dirty_log(on); });
    }
    Result<std::vector<std::vector<std::uint64_t>>> take_dirty() override {
        return m_vmm.m_machine->take_migration_dirty_pages();
    }
    Result<void> stop_vm() override {
        return m_vmm.run_on_vmm_thread([&]() -> Result<void> {
            if (m_vmm.m_state != InstanceState::Running) {
                return ok();  // paused by its user: it stays paused either way
            }
            if (auto r = m_vmm.m_machine->pause(); !r) {
                return r;
            }
            m_vmm.m_state = InstanceState::Paused;
            m_stopped = true;
            return ok();
        });
    }
    Result<void> resume_vm() override {
        return m_vmm.run_on_vmm_thread([&]() -> Result<void> {
            if (!m_stopped) {
                return ok();
            }
            m_stopped = false;
            if (auto r = m_vmm.m_machine->resume(); !r) {
                return r;
            }
            m_vmm.m_state = InstanceState::Running;
            spdlog::info("instance {}: resumed after the failed migration", m_vmm.m_options.id);
            return ok();
        });
    }
    Result<std::vector<std::uint8_t>> save_state() override {
        std::vector<std::uint8_t> bytes;
        auto r = m_vmm.run_on_vmm_thread([&]() -> Result<void> {
            auto contents = m_vmm.m_machine->save_state();
            if (!contents) {
                return contents.error();
            }
            contents->vireo_version = fmt::format("vireo {}", VIREO_VERSION);
            contents->config = to_json(m_vmm.m_config);
            bytes = encode_snapshot(*contents);
            return ok();
        });
        if (!r) {
            return r.error();
        }
        return bytes;
    }
    Result<void> release_storage() override {
        return m_vmm.run_on_vmm_thread([&] { return m_vmm.m_machine->release_disk_locks(); });
    }
    Result<void> retake_storage() override {
        return m_vmm.run_on_vmm_thread([&] { return m_vmm.m_machine->retake_disk_locks(); });
    }
    void set_throttle(unsigned percent) override { m_vmm.m_machine->set_vcpu_throttle(percent); }

private:
    VmmController& m_vmm;
    bool m_stopped = false;  // VMM thread only
};

// What the receiver builds into, on the VMM thread: at Config the VM itself, around RAM the pages
// then fill (Machine::prepare_restore; the disks opened unlocked while the source holds them),
// so that Complete only applies the state (finish_restore) and the switch-over does not wait for
// the VM to be built. In a local migration the VM is built when the memfd arrives.
class VmmController::MigrationTargetAdapter final : public migration::MigrationTarget {
public:
    MigrationTargetAdapter(VmmController& vmm, MigrationReceiveParams params)
        : m_vmm(vmm), m_params(std::move(params)) {}

    Result<GuestMemory*> prepare(const migration::MigrationConfig& incoming, bool local) override {
        auto r = m_vmm.run_on_vmm_thread([&]() -> Result<void> {
            auto parsed = parse_config_file(incoming.config_json);
            if (!parsed) {
                return parsed.error().wrap("the source's configuration");
            }
            VmConfig config = std::move(parsed).value();
            if (auto o = apply_overrides(config, m_params.network_overrides,
                                         m_params.drive_overrides, "migration/receive");
                !o) {
                return o;
            }
            // The source's drive paths are checked as a state file's are (snapshot_paths.h).
            SnapshotLoadParams as_load;
            as_load.drive_overrides = m_params.drive_overrides;
            if (auto c = check_snapshot_drive_paths(config, as_load); !c) {
                return c;
            }
            config.logger = m_vmm.m_config.logger;
            config.metrics = m_vmm.m_config.metrics;
            auto machine_config = machine_config_from(config, false);
            if (!machine_config) {
                return machine_config.error();
            }
            // The guest may use every feature it was shown: check before any memory moves.
            auto supported = m_vmm.m_accel.supported_cpuid();
            if (!supported) {
                return supported.error();
            }
            const auto here = x86::shape_cpuid(
                *supported,
                {0, machine_config->cpus, incoming.tsc_khz, machine_config->smt ? 2U : 1U});
            if (const auto missing = x86::missing_cpu_features(incoming.cpuid, here);
                !missing.empty()) {
                std::string list;
                for (std::size_t i = 0; i < missing.size() && i < 8; ++i) {
                    list += (i == 0 ? "" : ", ") + missing[i];
                }
                return Error(fmt::format(
                    "this host ({} accelerator) lacks {} CPU feature(s) the guest was given: {}{}",
                    m_vmm.m_accel.name(), missing.size(), list, missing.size() > 8 ? ", ..." : ""));
            }
            if (local && !machine_config->memfd) {
                return Error(
                    "a local migration of a VM whose RAM is not in a memfd (memory_backend "
                    "\"Memfd\")");
            }
            m_config = std::move(config);
            m_machine_config = std::move(machine_config).value();
            m_machine_config.defer_disk_locks = true;
            if (local) {
                return ok();  // RAM comes with MemoryFd (adopt)
            }
            auto memory = GuestMemory::create(layout::ram_regions(m_machine_config.memory),
                                              MemoryOptions{.memfd = m_machine_config.memfd,
                                                            .hugepages = true,
                                                            .hugetlb = m_machine_config.hugetlb});
            if (!memory) {
                return memory.error();
            }
            return build(std::move(memory).value());
        });
        if (!r) {
            return r.error();
        }
        return local ? nullptr : &m_machine->incoming_memory();
    }

    Result<GuestMemory*> adopt(UniqueFd fd, std::uint64_t size) override {
        auto r = m_vmm.run_on_vmm_thread([&]() -> Result<void> {
            const auto regions = layout::ram_regions(m_machine_config.memory);
            if (size != m_machine_config.memory) {
                return Error(fmt::format("MemoryFd: {} bytes of RAM handed over for a {} MiB guest",
                                         size, m_machine_config.memory >> 20));
            }
            auto memory = GuestMemory::adopt_memfd(regions, std::move(fd));
            if (!memory) {
                return memory.error();
            }
            return build(std::move(memory).value());
        });
        if (!r) {
            return r.error();
        }
        return &m_machine->incoming_memory();
    }

    Result<void> finish(const SnapshotContents& state) override {
        return m_vmm.run_on_vmm_thread([&]() -> Result<void> {
            if (m_vmm.m_state != InstanceState::NotStarted) {
                return Error("this vireo started a VM meanwhile");
            }
            if (!m_machine) {
                return Error("no VM was built for the migration");
            }
            const auto t0 = Clock::now();
            auto restored = m_machine->finish_restore(m_vmm.m_accel, m_machine_config, state,
                                                      /*keep_vm_id=*/true);
            if (!restored) {
                m_machine.reset();
                return restored;
            }
            spdlog::info("instance {}: the migrated VM's state applied in {:.1f} ms",
                         m_vmm.m_options.id,
                         std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
            m_vmm.m_config = std::move(m_config);
            m_vmm.m_machine = std::move(m_machine);
            m_vmm.m_state = InstanceState::Paused;
            m_vmm.start_machine_thread();
            return ok();
        });
    }

private:
    // VMM thread. The VM without vCPUs or state, around `memory` (Machine::prepare_restore).
    Result<void> build(GuestMemory memory) {
        const auto t0 = Clock::now();
        auto machine = Machine::prepare_restore(m_vmm.m_accel, m_machine_config, m_vmm.m_console,
                                                std::move(memory));
        if (!machine) {
            return machine.error();
        }
        m_machine = std::move(machine).value();
        spdlog::info("instance {}: the VM to migrate into was built in {:.1f} ms",
                     m_vmm.m_options.id,
                     std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
        return ok();
    }

    VmmController& m_vmm;
    MigrationReceiveParams m_params;
    VmConfig m_config;
    MachineConfig m_machine_config;
    std::unique_ptr<Machine> m_machine;  // VMM thread only, until it is the controller's
};

Result<void> VmmController::run_on_vmm_thread(std::function<Result<void>()> task) {
    auto answer = m_tasks->call(std::move(task));
    if (!answer) {
        return Error("the VMM is stopping");
    }
    return std::move(*answer);
}

std::optional<ApiResponse> VmmController::refuse_during_migration(const char* what) const {
    if (m_migration && m_migration->running.load()) {
        return ApiResponse::bad_request(
            fmt::format("{} is not allowed while a migration is under way (GET /migration; PUT "
                        "/migration/cancel ends it)",
                        what));
    }
    return std::nullopt;
}

MigrationInfo VmmController::migration_info() const {
    if (!m_migration) {
        return MigrationInfo{};
    }
    if (m_migration->sender) {
        return to_info(m_migration->sender->progress());
    }
    std::lock_guard lock(m_migration->mutex);
    MigrationProgress p = m_migration->progress;
    if (m_migration->channel != nullptr) {
        p.bytes = m_migration->channel->bytes_received();
    }
    return to_info(p);
}

ApiResponse VmmController::cancel_migration() {
    if (!m_migration || !m_migration->running.load()) {
        return ApiResponse::bad_request("PUT /migration/cancel: no migration is under way");
    }
    if (m_migration->sender) {
        m_migration->sender->cancel();
    } else {
        m_migration->cancelled.store(true);
        m_migration->stop->signal();
    }
    spdlog::info("instance {}: migration cancel requested", m_options.id);
    return ApiResponse::no_content();
}

ApiResponse VmmController::start_migration_send(const MigrationSendParams& p) {
    if (m_state == InstanceState::NotStarted) {
        return ApiResponse::bad_request(
            "PUT /migration/send needs a running or paused VM; this vireo has not started one");
    }
    if (auto refused = refuse_during_migration("PUT /migration/send")) {
        return *refused;
    }
    auto url = migration::parse_migration_url(p.destination_url);
    if (!url) {
        return ApiResponse::bad_request(url.error().wrap("destination_url").message());
    }
    if (p.local && url->kind != migration::MigrationUrl::Kind::Unix) {
        return ApiResponse::bad_request(
            "PUT /migration/send: `local` hands guest RAM over a Unix socket: `destination_url` "
            "must be unix:PATH");
    }
    migration::SendOptions options;
    options.destination = *url;
    options.downtime = std::chrono::milliseconds(p.downtime_ms);
    options.timeout = std::chrono::seconds(p.timeout_s);
    options.cancel_on_timeout = p.timeout_strategy == TimeoutStrategy::Cancel;
    options.max_bandwidth = p.max_bandwidth_mib << 20;
    options.auto_converge = p.auto_converge;
    options.local = p.local;

    finish_migration();  // the previous one's thread, long done
    auto job = std::make_unique<Migration>();
    job->source = std::make_unique<MigrationSourceAdapter>(*this);
    auto sender = migration::MigrationSender::create(*job->source, options);
    if (!sender) {
        return ApiResponse::failure(sender.error().wrap("migration"));
    }
    job->sender = std::move(sender).value();
    job->running.store(true);
    m_migration = std::move(job);
    Migration& m = *m_migration;
    const std::string to = url->to_string();
    spdlog::info("instance {}: migrating to {} (downtime limit {} ms, time limit {} s{})",
                 m_options.id, to, p.downtime_ms, p.timeout_s,
                 p.auto_converge ? ", auto-converge" : "");
    m.thread = seccomp::spawn(seccomp::ThreadKind::Migration, [this, &m, to] {
        auto r = m.sender->run();
        if (r) {
            const auto progress = m.sender->progress();
            spdlog::info(
                "instance {}: migrated to {}: {} passes, {} MiB sent, downtime {:.1f} ms, "
                "total {:.0f} ms",
                m_options.id, to, progress.iteration, progress.bytes >> 20, progress.downtime_ms,
                progress.total_ms);
            // The VM is the destination's: this process lets its copy go and exits 0.
            static_cast<void>(run_on_vmm_thread([this, to]() -> Result<void> {
                m_migrated_to = to;
                m_machine->request_stop("migrated to " + to);
                return ok();
            }));
        } else {
            spdlog::warn("instance {}: migration to {} failed, the VM stays here: {}", m_options.id,
                         to, r.error().message());
        }
        m.running.store(false);
    });
    return ApiResponse::no_content();
}

ApiResponse VmmController::start_migration_receive(const MigrationReceiveParams& p) {
    if (m_state != InstanceState::NotStarted || m_config.boot_source || !m_config.drives.empty() ||
        !m_config.network_interfaces.empty() || m_config.balloon) {
        return ApiResponse::bad_request(
            "PUT /migration/receive needs a fresh vireo: no VM started, no boot source, drives, "
            "network interfaces or balloon configured (the migrated VM brings its own)");
    }
    if (auto refused = refuse_during_migration("PUT /migration/receive")) {
        return *refused;
    }
    auto url = migration::parse_migration_url(p.receiver_url);
    if (!url) {
        return ApiResponse::bad_request(url.error().wrap("receiver_url").message());
    }
    if (p.local && url->kind != migration::MigrationUrl::Kind::Unix) {
        return ApiResponse::bad_request(
            "PUT /migration/receive: `local` takes guest RAM over a Unix socket: `receiver_url` "
            "must be unix:PATH");
    }
    auto stop_event = EventFd::create();
    if (!stop_event) {
        return ApiResponse::failure(stop_event.error());
    }
    finish_migration();
    auto job = std::make_unique<Migration>();
    job->stop.emplace(std::move(stop_event).value());
    job->target = std::make_unique<MigrationTargetAdapter>(*this, p);
    job->local_only = p.local;
    job->progress.state = MigrationState::Active;
    job->progress.role = "receive";
    job->progress.peer = url->to_string();
    job->running.store(true);
    m_migration = std::move(job);
    Migration& m = *m_migration;
    // Listening happens on the migration thread (its filter allows it); the answer waits for it.
    auto listening = std::make_shared<std::promise<Result<void>>>();
    auto listened = listening->get_future();
    const migration::MigrationUrl where = *url;
    m.thread = seccomp::spawn(seccomp::ThreadKind::Migration, [this, &m, where, listening] {
        const auto start = Clock::now();
        const auto fail = [&](const Error& e) {
            std::lock_guard lock(m.mutex);
            m.channel = nullptr;
            m.progress.state =
                m.cancelled.load() ? MigrationState::Cancelled : MigrationState::Failed;
            m.progress.error = e.message();
            m.progress.total_ms =
                std::chrono::duration<double, std::milli>(Clock::now() - start).count();
        };
        auto listener = migration::listen_migration(where);
        if (!listener) {
            fail(listener.error());
            m.running.store(false);
            listening->set_value(listener.error());
            return;
        }
        listening->set_value(Result<void>());
        auto conn = migration::accept_migration(listener->get(), m.stop->fd());
        if (where.kind == migration::MigrationUrl::Kind::Unix) {
            ::unlink(where.path.c_str());  // one connection only; the path is free again
        }
        listener->reset();
        Result<migration::ReceiveOutcome> outcome = Error("not connected");
        migration::MigrationReceiver receiver(*m.target, m.local_only);
        if (conn) {
            migration::FrameChannel channel(std::move(conn).value(), m.stop->fd());
            {
                std::lock_guard lock(m.mutex);
                m.channel = &channel;
            }
            outcome = migration::serve_migration(channel, receiver, kReceiveIdle);
            const auto ms = [](std::chrono::nanoseconds d) {
                return std::chrono::duration<double, std::milli>(d).count();
            };
            spdlog::info(
                "instance {}: the migration's stream: {} bytes; socket {:.0f} ms (with the waits "
                "for the sender), checksums {:.0f} ms, writing RAM {:.0f} ms",
                m_options.id, channel.bytes_received(), ms(channel.io_time()),
                ms(channel.check_time()), ms(receiver.apply_time()));
            std::lock_guard lock(m.mutex);
            m.progress.bytes = channel.bytes_received();
            m.progress.iteration = receiver.iterations();
            m.progress.pages = receiver.pages();
            m.channel = nullptr;
        } else {
            outcome = conn.error();
        }
        if (!outcome) {
            const Error e =
                m.cancelled.load() ? Error("the migration was cancelled") : outcome.error();
            fail(e);
            spdlog::error("instance {}: receiving the migration failed: {}", m_options.id,
                          e.message());
            // Nothing is kept: a half-built VM is stopped and this process ends non-zero.
            static_cast<void>(run_on_vmm_thread([this, e]() -> Result<void> {
                m_migration_failure = e.message();
                stop("migration failed");
                return ok();
            }));
            m.running.store(false);
            return;
        }
        const bool committed = *outcome == migration::ReceiveOutcome::Committed;
        if (committed) {
            spdlog::info("instance {}: the source let the VM go (Commit): resuming it here",
                         m_options.id);
        }
        static_cast<void>(run_on_vmm_thread([this, committed]() -> Result<void> {
            if (!committed) {
                spdlog::warn(
                    "instance {}: the source acknowledged but never confirmed; the VM "
                    "stays paused here (PATCH /vm Resumed runs it, once the source is "
                    "known to be gone)",
                    m_options.id);
                return ok();
            }
            const ApiResponse resumed = set_state(VmStateRequest::Resumed);
            if (resumed.failed()) {
                return Error("resuming the migrated VM failed");
            }
            // Switches still send the guest's frames to the old port: tell them.
            m_machine->announce_network();
            return ok();
        }));
        {
            std::lock_guard lock(m.mutex);
            m.progress.state = MigrationState::Completed;
            m.progress.total_ms =
                std::chrono::duration<double, std::milli>(Clock::now() - start).count();
        }
        spdlog::info("instance {}: migration received from {}: {} passes, {} pages, {}",
                     m_options.id, where.to_string(), receiver.iterations(), receiver.pages(),
                     committed ? "running" : "paused (no Commit)");
        m.running.store(false);
    });
    auto listened_result = listened.get();
    if (!listened_result) {
        finish_migration();
        return ApiResponse::bad_request(listened_result.error().message());
    }
    spdlog::info("instance {}: waiting for a migration on {}", m_options.id, url->to_string());
    return ApiResponse::no_content();
}

void VmmController::finish_migration() {
    if (!m_migration) {
        return;
    }
    if (m_migration->running.load()) {
        if (m_migration->sender) {
            m_migration->sender->cancel();
        } else if (m_migration->stop) {
            m_migration->cancelled.store(true);
            m_migration->stop->signal();
        }
        // The thread may be waiting for the VMM thread: serve it until it is done.
        while (m_migration->running.load()) {
            while (auto task = m_tasks->poll()) {
                task->respond(task->request());
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(2));
        }
    }
    if (m_migration->thread.joinable()) {
        m_migration->thread.join();
    }
}

}  // namespace vireo
