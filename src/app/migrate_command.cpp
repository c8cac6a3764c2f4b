#include "app/migrate_command.h"

#include <chrono>
#include <thread>

#include <fmt/format.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "api/api_client.h"
#include "app/accel_option.h"
#include "app/run_command.h"

namespace vireo::app {

namespace {

int receive(const MigrateCommandOptions& o) {
    MigrationReceiveParams params;
    params.receiver_url = o.listen;
    params.local = o.local;
    if (!parse_override_options(o.network_overrides, o.drive_overrides, params.network_overrides,
                                params.drive_overrides)) {
        return kExitUsage;
    }
    return run_vmm_command(with_api_socket(o.vmm, o.api_sock), std::nullopt, params);
}

int send(const MigrateCommandOptions& o) {
    const nlohmann::json body = {{"destination_url", o.to},
                                 {"downtime_ms", o.downtime_ms},
                                 {"timeout_s", o.timeout_s},
                                 {"timeout_strategy", o.timeout_strategy},
                                 {"max_bandwidth_mib", o.max_bandwidth_mib},
                                 {"auto_converge", !o.no_auto_converge},
                                 {"local", o.local}};
    auto r = api_call(o.api_sock, "PUT", "/migration/send", body.dump());
    if (!r || r->status != 204) {
        fmt::print(stderr, "vireo migrate send: {}\n", r ? fault_of(*r) : r.error().message());
        return kExitError;
    }
    // The source's API answers until the VM has gone: poll it, a line per finished pass.
    std::uint64_t shown = 0;
    nlohmann::json last;
    for (;;) {
        auto got = api_call(o.api_sock, "GET", "/migration");
        if (!got || got->status != 200) {
            // A source whose VM moved answers for a second more (vmm_controller.cpp): one that
            // is gone before saying so ended some other way. Never claim a success not seen.
            fmt::print(stderr,
                       "vireo migrate send: the source stopped answering before the migration "
                       "finished ({}); check both sides\n",
                       got ? fault_of(*got) : got.error().message());
            return kExitError;
        }
        last = nlohmann::json::parse(got->body, nullptr, false);
        if (!last.is_object()) {
            fmt::print(stderr, "vireo migrate send: GET /migration answered {}\n", got->body);
            return kExitError;
        }
        const auto iteration = last.value("iteration", std::uint64_t{0});
        if (iteration > shown) {
            shown = iteration;
            fmt::print(
                "pass {}: {} MiB sent, {} pages dirty, {:.0f} MiB/s, expected downtime "
                "{:.1f} ms, throttle {}%\n",
                iteration, last.value("bytes", std::uint64_t{0}) >> 20,
                last.value("remaining_pages", std::uint64_t{0}), last.value("bandwidth_mib_s", 0.0),
                last.value("expected_downtime_ms", 0.0),
                last.value("throttle_percent", std::uint64_t{0}));
            std::fflush(stdout);
        }
        const std::string state = last.value("state", "");
        if (state == "completed") {
            fmt::print(
                "vireo migrate send: done: downtime {:.1f} ms, total {:.0f} ms, {} MiB sent ({} "
                "bytes)\n",
                last.value("downtime_ms", 0.0), last.value("total_ms", 0.0),
                last.value("bytes", std::uint64_t{0}) >> 20, last.value("bytes", std::uint64_t{0}));
            return kExitOk;
        }
        if (state != "active") {
            const auto& error = last["error"];
            fmt::print(stderr, "vireo migrate send: {}: {}\n", state,
                       error.is_string() ? error.get<std::string>() : "no reason given");
            return kExitError;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
}

}  // namespace

MigrateCommands add_migrate_command(CLI::App& app, MigrateCommandOptions& o) {
    MigrateCommands c;
    c.top = app.add_subcommand("migrate", "Move a running VM to another vireo (live migration)");
    c.top->require_subcommand(1);

    c.receive = c.top->add_subcommand(
        "receive", "Start a VMM that waits for a migrated VM and runs it once it arrives");
    c.receive->add_option("--listen", o.listen, "tcp:ADDR:PORT or unix:PATH")->required();
    add_incoming_vm_options(*c.receive, o.api_sock, o.network_overrides, o.drive_overrides, o.vmm);
    add_accel_option(*c.receive, o.vmm.accel);
    c.receive->add_flag("--local", o.local,
                        "Take only a local migration: guest RAM handed over, never copied "
                        "(unix: only)");

    c.send = c.top->add_subcommand("send", "Migrate the VM of a running vireo to a destination");
    c.send->add_option("--api-sock", o.api_sock, "The source VMM's API socket")->required();
    c.send->add_option("--to", o.to, "The destination: tcp:ADDR:PORT or unix:PATH")->required();
    c.send->add_option("--downtime-ms", o.downtime_ms, "Longest pause to switch over")
        ->check(CLI::Range(1, 600000))
        ->capture_default_str();
    c.send->add_option("--timeout-s", o.timeout_s, "Time limit")
        ->check(CLI::Range(1, 7 * 24 * 3600))
        ->capture_default_str();
    c.send
        ->add_option("--timeout-strategy", o.timeout_strategy,
                     "At the time limit: Cancel, or Ignore (switch over anyway)")
        ->check(CLI::IsMember({"Cancel", "Ignore"}))
        ->capture_default_str();
    c.send->add_option("--max-bandwidth-mib", o.max_bandwidth_mib, "MiB/s; 0 for no limit")
        ->capture_default_str();
    c.send->add_flag("--no-auto-converge", o.no_auto_converge,
                     "Never throttle the vCPUs to converge");
    c.send->add_flag("--local", o.local,
                     "Live upgrade on this host: hand guest RAM (a memfd) over a Unix socket "
                     "instead of copying it");
    return c;
}

int run_migrate_command(const MigrateCommands& c, const MigrateCommandOptions& o) {
    if (c.receive->parsed()) {
        return receive(o);
    }
    return send(o);
}

}  // namespace vireo::app
