// The kinds of vireo thread, each confined by its own seccomp filter (issue 11 §2). The names are
// the thread categories of a filter file (`--seccomp-filter`, Firecracker's seccompiler format):
// Firecracker's "vmm", "api" and "vcpu", plus vireo's own threads (Firecracker serves its devices
// on the vmm thread; vireo gives each device its own thread).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace vireo::seccomp {

enum class ThreadKind : std::uint8_t {
    Vmm,            // the main thread: VMM controller (API requests, VM build, snapshots)
    Api,            // the API server's listener and its worker threads
    Vcpu,           // a vCPU: KVM_RUN and the port-I/O/MMIO exits it handles
    Machine,        // runs a machine: starts its vCPUs, waits for its end
    Signal,         // takes SIGTERM/SIGINT/SIGHUP/SIGQUIT with sigtimedwait
    ConsoleInput,   // reads stdin into the guest's console
    ConsoleOutput,  // writes the guest's console output (buffered by the vCPUs) to stdout or a file
    VirtioBlk,      // a virtio-blk device thread (io_uring or thread-pool engine)
    VirtioNet,      // a virtio-net device thread (tap)
    VirtioConsole,  // a virtio-console device thread
    VirtioRng,      // a virtio-rng device thread
    VirtioBalloon,  // a virtio-balloon device thread
    BlockIo,        // a worker of the block thread-pool engine (pread/pwrite/fsync)
    Migration,      // a live migration's stream, either side (migration/); the VM work it needs
                    // runs on the VMM thread
    Launcher,       // starts every other thread (seccomp.cpp); its filter is the union of all
};

inline constexpr std::size_t kThreadKindCount = static_cast<std::size_t>(ThreadKind::Launcher) + 1;

inline constexpr std::array<std::string_view, kThreadKindCount> kThreadKindNames = {
    "vmm",
    "api",
    "vcpu",
    "machine",
    "signal",
    "console_input",
    "console_output",
    "virtio_blk",
    "virtio_net",
    "virtio_console",
    "virtio_rng",
    "virtio_balloon",
    "block_io",
    "migration",
    "launcher",
};

constexpr std::string_view name(ThreadKind kind) {
    return kThreadKindNames[static_cast<std::size_t>(kind)];
}

// The kind a filter file's category names; nullopt for an unknown name.
constexpr std::optional<ThreadKind> thread_kind_from_name(std::string_view category) {
    for (std::size_t i = 0; i < kThreadKindCount; ++i) {
        if (kThreadKindNames[i] == category) {
            return static_cast<ThreadKind>(i);
        }
    }
    return std::nullopt;
}

// The kind of a virtio device's thread, by virtio device type (virtio 1.2 §5): 1 net, 2 block,
// 3 console, 4 entropy, 5 balloon. Other types (none yet) would run under the vmm filter.
constexpr ThreadKind virtio_thread_kind(std::uint16_t device_type) {
    switch (device_type) {
        case 1:
            return ThreadKind::VirtioNet;
        case 2:
            return ThreadKind::VirtioBlk;
        case 3:
            return ThreadKind::VirtioConsole;
        case 4:
            return ThreadKind::VirtioRng;
        case 5:
            return ThreadKind::VirtioBalloon;
        default:
            return ThreadKind::Vmm;
    }
}

}  // namespace vireo::seccomp
