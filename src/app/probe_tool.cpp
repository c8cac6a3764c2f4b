// vireo-probe: runs synthetic guests on /dev/kvm (or the soft CPU) and reports what the vCPU core
// saw. A quick answer to "does KVM work on this host, and how fast are exits and user-mode code".
// A developer's and the test host's tool, built beside vireo: the shipped `vireo` does not carry
// the probe guests (src/probe).
#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>
#include <string_view>

#include <fmt/format.h>

#include "app/accel_option.h"
#include "probe/asm.h"
#include "probe/probe_guest.h"

namespace vireo::app {

namespace {

using probe::Asm;
using probe::CpuMode;
using probe::IoAccess;
using probe::ProbeGuest;
using probe::RecordingIo;
using Clock = std::chrono::steady_clock;

constexpr std::uint16_t kCom1 = 0x3f8;
constexpr std::uint8_t kDonePort = 0xf4;

// The guest writes a greeting to COM1 one byte per OUT, then halts.
Result<void> hello(Accelerator& accel) {
    constexpr std::string_view greeting = "Hello from a vireo probe guest (real mode)\n";
    Asm a;
    a.code16(true).mov_dx(kCom1);
    for (char c : greeting) {
        a.mov_al(static_cast<std::uint8_t>(c)).out_dx_al();
    }
    a.hlt();
    auto guest = ProbeGuest::create(accel, CpuMode::Real, a.code());
    if (!guest) {
        return guest.error();
    }
    RecordingIo io;
    io.on_access([](const IoAccess& acc) {
        if (acc.kind == IoAccess::Kind::PioWrite && acc.address == kCom1) {
            std::fputc(static_cast<int>(acc.value & 0xff), stdout);
        }
    });
    auto exit = (*guest)->run(io, std::chrono::seconds(10));
    std::fflush(stdout);
    if (!exit) {
        return exit.error();
    }
    if (exit->kind != VcpuExitKind::Halt) {
        return Error(fmt::format("guest ended with {} instead of halt {}", to_string(exit->kind),
                                 exit->detail));
    }
    const auto& stats = (*guest)->vcpu().stats();
    fmt::print("  exits: {} port writes, {} halt\n", stats[ExitReason::PioWrite],
               stats[ExitReason::Halt]);
    return ok();
}

// A CPL3 counting loop, then an OUT to report completion.
Result<void> user_loop(Accelerator& accel, unsigned long long iterations) {
    Asm a;
    a.mov_rcx(iterations);
    const auto loop = a.here();
    a.dec_rcx().jnz(loop);
    a.mov_al(1).out_imm8_al(kDonePort);
    const auto spin = a.here();
    a.jmp(spin);
    auto guest = ProbeGuest::create(accel, CpuMode::User64, a.code());
    if (!guest) {
        return guest.error();
    }
    RecordingIo io;
    Vcpu& vcpu = (*guest)->vcpu();
    io.on_access([&vcpu](const IoAccess& acc) {
        if (acc.kind == IoAccess::Kind::PioWrite && acc.address == kDonePort) {
            vcpu.request_exit();
        }
    });
    const auto start = Clock::now();
    auto exit = (*guest)->run(io, std::chrono::seconds(60));
    const double secs = std::chrono::duration<double>(Clock::now() - start).count();
    if (!exit) {
        return exit.error();
    }
    if ((*guest)->timed_out()) {
        return Error("user-mode loop did not finish within 60 s");
    }
    fmt::print("  {} iterations of a CPL3 loop in {:.3f} s ({:.1f} M iterations/s)\n", iterations,
               secs, static_cast<double>(iterations) / secs / 1e6);
    return ok();
}

struct ProbeOptions {
    std::string device = "/dev/kvm";
    std::string accel;  // --accel; empty: kvm
    unsigned long long user_loop_iterations = 100'000'000;
};

int run_probe(const ProbeOptions& options) {
    auto opened = open_accel_option(options.accel, "vireo-probe", options.device.c_str());
    if (!opened) {
        fmt::print(stderr, "vireo-probe: {}\n", opened.error().message());
        return 1;
    }
    Accelerator* accel = opened->accel.get();
    if (opened->kind == AccelKind::Kvm) {
        fmt::print("vireo-probe: {} opened, API version 12\n", options.device);
    } else {
        fmt::print("vireo-probe: the software CPU (--accel soft)\n");
    }
    if (auto r = hello(*accel); !r) {
        fmt::print(stderr, "vireo-probe: real-mode guest: {}\n", r.error().message());
        return 1;
    }
    if (auto r = user_loop(*accel, options.user_loop_iterations); !r) {
        fmt::print(stderr, "vireo-probe: user-mode guest: {}\n", r.error().message());
        return 1;
    }
    fmt::print("vireo-probe: OK\n");
    return 0;
}

}  // namespace
}  // namespace vireo::app

int main(int argc, char** argv) {
    CLI::App app{
        "vireo-probe: synthetic guests on /dev/kvm or the soft CPU, and what the vCPU core "
        "saw of them",
        "vireo-probe"};
    vireo::app::ProbeOptions options;
    app.add_option("--device", options.device, "KVM device node")->capture_default_str();
    vireo::app::add_accel_option(app, options.accel);
    app.add_option("--user-loop", options.user_loop_iterations,
                   "Iterations of the user-mode (CPL3) loop")
        ->capture_default_str()
        ->check(CLI::Range(1ULL, 1ULL << 40));
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    }
    return vireo::app::run_probe(options);
}
