// Exit costs of the vCPU core on this host's /dev/kvm: the quantity that dominates boot time in
// the nested host (DESIGN.md §5: one port-I/O exit there costs ~90 us). Reported as exits/s.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>

#include "accel/kvm/kvm_accelerator.h"
#include "probe/asm.h"
#include "probe/probe_guest.h"

namespace vireo::probe {
namespace {

constexpr std::uint64_t kExitsPerRun = 2000;

KvmAccelerator& kvm() {
    static auto accel = [] {
        auto a = KvmAccelerator::open();
        if (!a) {
            std::fprintf(stderr, "vireo_bench: %s\n", a.error().message().c_str());
            std::exit(1);
        }
        return std::move(a).value();
    }();
    return *accel;
}

// Runs `code` (an endless loop of exits) until kExitsPerRun accesses, per benchmark iteration.
void bench_exits(benchmark::State& state, CpuMode mode, const Asm& code) {
    auto guest = ProbeGuest::create(kvm(), mode, code.code());
    if (!guest) {
        state.SkipWithError(guest.error().message().c_str());
        return;
    }
    ProbeGuest& g = **guest;
    std::uint64_t count = 0;
    RecordingIo io;
    io.on_access([&](const IoAccess&) {
        if (++count % kExitsPerRun == 0) {
            g.vcpu().request_exit();
        }
    });
    for (auto _ : state) {
        auto exit = g.vcpu().run(io);
        if (!exit || exit->kind != VcpuExitKind::Interrupted) {
            state.SkipWithError("guest stopped unexpectedly");
            return;
        }
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * kExitsPerRun));
    // Seconds per exit (printed with a unit prefix, e.g. 7.4u = 7.4 us).
    state.counters["per_exit"] = benchmark::Counter(
        static_cast<double>(kExitsPerRun),
        benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}

void BM_PioExitUserMode(benchmark::State& state) {
    Asm a;
    const auto top = a.here();
    a.out_imm8_al(0x80).jmp(top);
    bench_exits(state, CpuMode::User64, a);
}

void BM_PioExitKernelMode(benchmark::State& state) {
    Asm a;
    const auto top = a.here();
    a.out_imm8_al(0x80).jmp(top);
    bench_exits(state, CpuMode::Long64, a);
}

void BM_MmioExitUserMode(benchmark::State& state) {
    Asm a;
    a.mov_rax(kUnmappedAddress);
    const auto top = a.here();
    a.mov_mem_rax_imm32(1).jmp(top);
    bench_exits(state, CpuMode::User64, a);
}

BENCHMARK(BM_PioExitUserMode)->Unit(benchmark::kMillisecond)->MinTime(1.0);
BENCHMARK(BM_PioExitKernelMode)->Unit(benchmark::kMillisecond)->MinTime(1.0);
BENCHMARK(BM_MmioExitUserMode)->Unit(benchmark::kMillisecond)->MinTime(1.0);

}  // namespace
}  // namespace vireo::probe

BENCHMARK_MAIN();
