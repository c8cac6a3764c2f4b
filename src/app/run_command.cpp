#include "app/run_command.h"

#include <limits.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "app/accel_option.h"
#include "app/device_spec.h"
#include "arch/x86_64/boot_layout.h"
#include "arch/x86_64/kernel_loader.h"
#include "arch/x86_64/memory_layout.h"
#include "backends/char/console.h"
#include "base/size.h"
#include "machine/machine.h"
#include "seccomp/seccomp.h"

namespace vireo::app {

namespace {

// --memory and --console-max-size: a size parse_size() takes (512M, 2G; bare number: MiB).
CLI::Validator size_validator() {
    return CLI::Validator(
        [](std::string& s) -> std::string {
            auto r = parse_size(s);
            return r ? std::string() : r.error().message();
        },
        "SIZE");
}

namespace fs = std::filesystem;

// The default guest: build/guest/cloud next to build/vireo, or /guest/cloud in the nested host.
std::optional<fs::path> default_guest_dir() {
    std::vector<fs::path> candidates;
    std::error_code ec;
    const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
    if (!ec) {
        candidates.push_back(exe.parent_path() / "guest" / "cloud");
    }
    candidates.emplace_back("/guest/cloud");
    for (const auto& dir : candidates) {
        if (fs::exists(dir / "vmlinuz", ec) && fs::exists(dir / "initramfs.cpio.gz", ec)) {
            return dir;
        }
    }
    return std::nullopt;
}

// Signals that end the VM in order. Blocked in every thread (vCPU threads inherit the mask) and
// taken by one watcher thread with sigtimedwait.
class SignalWatcher {
public:
    SignalWatcher() {
        sigemptyset(&m_set);
        for (int s : {SIGTERM, SIGINT, SIGHUP, SIGQUIT}) {
            sigaddset(&m_set, s);
        }
        pthread_sigmask(SIG_BLOCK, &m_set, nullptr);
    }
    void watch(Machine& machine) {
        m_done = false;
        m_thread = seccomp::spawn(seccomp::ThreadKind::Signal, [this, &machine] {
            const timespec tick{0, 100'000'000};
            while (!m_done.load()) {
                const int s = sigtimedwait(&m_set, nullptr, &tick);
                if (s > 0 && !m_done.load()) {
                    m_signal = s;
                    machine.request_stop(fmt::format("stopped by SIG{}", sigabbrev_np(s)));
                }
            }
        });
    }
    void unwatch() {
        m_done = true;
        if (m_thread.joinable()) {
            // Wake it now rather than at its next tick; the signal is consumed, not acted on.
            pthread_kill(m_thread.native_handle(), SIGHUP);
            m_thread.join();
        }
    }
    int signal() const { return m_signal.load(); }
    ~SignalWatcher() { unwatch(); }

private:
    sigset_t m_set{};
    std::thread m_thread;
    std::atomic<bool> m_done{false};
    std::atomic<int> m_signal{0};
};

// Whether the kernel file looks like a multiboot image (its first 64 KiB, where the header and a
// PVH vmlinux's program headers are): only to choose the default command line; the loader
// decides for real. A file that cannot be read is not one (the loader then says why).
bool is_multiboot_kernel(const std::string& path) {
    std::vector<std::uint8_t> head(64 * 1024);
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (f == nullptr) {
        return false;
    }
    head.resize(std::fread(head.data(), 1, head.size(), f));
    std::fclose(f);
    auto format = loader::detect_kernel_format(head);
    return format && *format == loader::KernelFormat::Multiboot;
}

// CLI11 already names the option in front of a validator's message.
std::string without_prefix(const std::string& message, std::string_view prefix) {
    return message.rfind(prefix, 0) == 0 ? message.substr(prefix.size()) : message;
}

}  // namespace

CLI::App* add_run_command(CLI::App& app, RunOptions& o) {
    auto* run =
        app.add_subcommand("run", "Boot a Linux guest on KVM and run it until it powers off");
    run->footer(
        "Exit status: 0 guest powered off (or rebooted with --on-reboot exit, or was stopped by\n"
        "SIGTERM/SIGINT or Ctrl-A x); 1 vireo failed; 2 bad arguments; 3 the guest crashed\n"
        "(kernel panic, triple fault, failed VM entry); with the debug-exit port, (V << 1) | 1\n"
        "when the guest wrote V to port 0xf4.\n"
        "With no --kernel, the default guest (build/guest/cloud) is booted.");
    run->add_option("--kernel", o.machine.kernel_path,
                    "Kernel: a bzImage (64-bit boot protocol), an ELF vmlinux with a PVH note, or "
                    "a multiboot (v1) image")
        ->check(CLI::ExistingFile);
    run->add_option("--initrd", o.machine.initrd_path, "Initial ramdisk (cpio, may be compressed)")
        ->check(CLI::ExistingFile);
    run->add_option("--cmdline", o.machine.cmdline,
                    "Kernel command line (a multiboot kernel's gets its file name in front)")
        ->default_str(kDefaultCmdline)
        ->each([&o](const std::string&) { o.cmdline_given = true; });
    run->add_option("--cpus", o.machine.cpus, "Number of vCPUs")
        ->capture_default_str()
        ->check(CLI::Range(1U, kMaxVcpus));
    add_accel_option(*run, o.accel);
    run->add_option("--memory", o.memory_text, "Guest RAM, e.g. 512M or 2G (bare number: MiB)")
        ->capture_default_str()
        ->check(size_validator());
    run->add_option("--console", o.console,
                    "Guest console: stdio or file:PATH (the serial port, ttyS0), or virtio (a "
                    "virtio-console, hvc0, on stdio)")
        ->capture_default_str()
        ->check(CLI::Validator(
            [](std::string& s) -> std::string {
                return s == "stdio" || s == "virtio" || (s.rfind("file:", 0) == 0 && s.size() > 5)
                           ? std::string()
                           : "must be stdio, virtio or file:PATH";
            },
            "stdio|virtio|file:PATH"));
    run->add_option("--console-max-size", o.console_max_size,
                    "With --console file:PATH, the most bytes written to the file; guest output "
                    "beyond is dropped and counted")
        ->capture_default_str()
        ->check(size_validator());
    run->add_option(
           "--disk", o.disk_specs,
           "A virtio-blk disk on a raw image: path=FILE[,readonly=on][,direct=on][,serial=ID]"
           "[,bw=LIMIT][,iops=LIMIT] (repeatable: vda, vdb, ...). LIMIT is AMOUNT[/MS][+BURST]: "
           "AMOUNT per MS milliseconds (default 1000) plus a one-time BURST; bw takes K/M/G "
           "suffixes (bw=10M: 10 MiB/s)")
        ->check(CLI::Validator(
            [](std::string& s) -> std::string {
                auto d = parse_disk_spec(s);
                if (!d) {
                    return without_prefix(d.error().message(), "--disk: ");
                }
                std::error_code ec;
                if (!fs::exists(d->path, ec)) {
                    return fmt::format("{}: no such file", d->path);
                }
                return std::string();
            },
            "path=FILE[,readonly=on][,direct=on][,serial=ID][,bw=LIMIT][,iops=LIMIT]"));
    run->add_option("--net", o.net_specs,
                    "A virtio-net NIC on a tap device (created if absent): tap=NAME[,mac=MAC]"
                    "[,rx_bw=LIMIT][,rx_ops=LIMIT][,tx_bw=LIMIT][,tx_ops=LIMIT] (repeatable; "
                    "LIMIT as for --disk)")
        ->check(CLI::Validator(
            [](std::string& s) -> std::string {
                auto n = parse_net_spec(s);
                return n ? std::string() : without_prefix(n.error().message(), "--net: ");
            },
            "tap=NAME[,mac=MAC][,rx_bw=LIMIT][,tx_bw=LIMIT]..."));
    run->add_option("--balloon", o.balloon_spec,
                    "A virtio-balloon: amount_mib=N[,deflate_on_oom=on|off][,stats_interval=S]"
                    "[,free_page_reporting=on|off]; N MiB (at most --memory) is what the guest is "
                    "asked to give back, S seconds between statistics (0, the default: none)")
        ->check(CLI::Validator(
            [](std::string& s) -> std::string {
                auto b = parse_balloon_spec(s);
                // CLI11 names the option already; the spec's own prefix would repeat it.
                return b ? std::string()
                         : without_prefix(without_prefix(b.error().message(), "--balloon: "),
                                          "--balloon ");
            },
            "amount_mib=N[,deflate_on_oom=on|off][,stats_interval=S][,free_page_reporting=on|"
            "off]"));
    run->add_option("--on-reboot", o.on_reboot, "What a guest reboot does: exit or restart")
        ->transform(
            CLI::CheckedTransformer(std::map<std::string, OnReboot>{{"exit", OnReboot::Exit},
                                                                    {"restart", OnReboot::Restart}},
                                    CLI::ignore_case))
        ->default_str("exit");
    run->add_flag("--debug-exit", o.machine.debug_exit,
                  "QEMU's isa-debug-exit at port 0xf4: the guest's write of V ends vireo with "
                  "status (V << 1) | 1 (always there for multiboot kernels)");
    run->add_flag("--verbose", o.verbose, "Print exit counters and unclaimed I/O when the VM ends");
    add_seccomp_options(*run, o.seccomp);
    return run;
}

int run_command(RunOptions& o) {
    if (o.console == "virtio") {
        o.machine.console = ConsoleDevice::Virtio;
        o.console = "stdio";
    }
    // The specs were validated by the parser.
    for (const auto& spec : o.disk_specs) {
        o.machine.disks.push_back(parse_disk_spec(spec).value());
    }
    for (const auto& spec : o.net_specs) {
        o.machine.nets.push_back(parse_net_spec(spec).value());
    }
    if (o.machine.disks.size() > kMaxDisks || o.machine.nets.size() > kMaxNets) {
        fmt::print(stderr, "vireo: at most {} disks and {} NICs\n", kMaxDisks, kMaxNets);
        return kExitUsage;
    }
    o.machine.memory = parse_size(o.memory_text).value();  // validated by the parser
    if (!o.balloon_spec.empty()) {
        o.machine.balloon = parse_balloon_spec(o.balloon_spec).value();  // validated by the parser
        if (auto fits = check_balloon_fits(*o.machine.balloon, o.machine.memory); !fits) {
            fmt::print(stderr, "vireo: {}\n", fits.error().message());
            return kExitUsage;
        }
    }
    if (o.machine.kernel_path.empty()) {
        auto dir = default_guest_dir();
        if (!dir) {
            fmt::print(
                stderr,
                "vireo: no --kernel given and no default guest image found (looked in "
                "build/guest/cloud next to the vireo binary and /guest/cloud); build it with "
                "tests/guest/build\n");
            return kExitUsage;
        }
        o.machine.kernel_path = (*dir / "vmlinuz").string();
        if (o.machine.initrd_path.empty()) {
            o.machine.initrd_path = (*dir / "initramfs.cpio.gz").string();
        }
    }
    // The default command line is Linux's; a multiboot kernel gets none, as from QEMU.
    if (!o.cmdline_given && !is_multiboot_kernel(o.machine.kernel_path)) {
        o.machine.cmdline =
            o.machine.console == ConsoleDevice::Virtio ? kDefaultVirtioCmdline : kDefaultCmdline;
    }

    SignalWatcher signals;  // before any thread exists, so all inherit the blocked mask
    if (const int status = start_seccomp(o.seccomp); status != 0) {
        return status;
    }
    // Before anything is built: a kernel or initrd that cannot fit costs no allocation.
    if (auto fits = loader::check_boot_files(o.machine.kernel_path, o.machine.initrd_path,
                                             layout::e820_map(o.machine.memory));
        !fits) {
        fmt::print(stderr, "vireo: {}\n", fits.error().message());
        return kExitUsage;
    }
    auto console = open_console(o.console, parse_size(o.console_max_size).value());
    if (!console) {
        fmt::print(stderr, "vireo: {}\n", console.error().message());
        return kExitUsage;
    }
    auto accel = open_accel_option(o.accel, "vireo");
    if (!accel) {
        fmt::print(stderr, "vireo: {}\n", accel.error().message());
        return kExitError;
    }
    if (auto r = seccomp::confine_thread(seccomp::ThreadKind::Vmm); !r) {
        fmt::print(stderr, "vireo: {}\n", r.error().message());
        return kExitError;
    }
    for (unsigned boot = 1;; ++boot) {
        auto machine = Machine::create(*accel->accel, o.machine, **console);
        if (!machine) {
            (*console).reset();  // restore the terminal before printing
            fmt::print(stderr, "vireo: {}\n", machine.error().message());
            return kExitError;
        }
        signals.watch(**machine);
        const MachineExit exit = (*machine)->run();
        signals.unwatch();
        if (o.verbose) {
            fmt::print(stderr, "{}", (*machine)->exit_summary());
        }
        if (exit.kind == MachineExitKind::Reset && o.on_reboot == OnReboot::Restart) {
            fmt::print(stderr, "\r\nvireo: the guest rebooted; restarting it (boot {})\r\n",
                       boot + 1);
            continue;
        }
        machine->reset();
        (*console).reset();  // leave raw mode before the last words
        if (exit.kind == MachineExitKind::Reset) {
            fmt::print(stderr, "vireo: the guest rebooted; exiting (--on-reboot exit)\n");
        } else if (exit.kind == MachineExitKind::Stopped) {
            fmt::print(stderr, "vireo: {}\n", exit.message);
        }
        return exit_status(exit);
    }
}

}  // namespace vireo::app
