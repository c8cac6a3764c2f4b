// A running x86-64 VM: guest memory, the accelerator's VM and vCPUs (one thread each), the
// platform devices on the port-I/O bus, ACPI tables and the loaded kernel. Built whole by
// create(); run() starts the vCPUs and returns when the guest powers off, resets or crashes, or
// when request_stop() is called.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "accel/vm.h"
#include "acpi/acpi_tables.h"
#include "arch/x86_64/boot_config.h"
#include "backends/char/console.h"
#include "bus/io_bus.h"
#include "devices/legacy/cmos_rtc.h"
#include "devices/legacy/i8042.h"
#include "devices/legacy/serial8250.h"
#include "devices/pci/pci_root.h"
#include "devices/platform/vm_gen_id.h"
#include "devices/virtio/virtio_balloon.h"
#include "devices/virtio/virtio_console.h"
#include "devices/virtio/virtio_pci_device.h"
#include "irq/shared_irq_line.h"
#include "machine/component_registry.h"
#include "machine/machine_config.h"
#include "machine/machine_io.h"
#include "machine/panic_detector.h"
#include "memory/guest_memory.h"
#include "snapshot/snapshot_file.h"

namespace vireo {

enum class MachineExitKind {
    PowerOff,   // the guest powered off (ACPI S5)
    Reset,      // the guest asked for a reset (ACPI reset register, i8042)
    Crash,      // kernel panic, triple fault, or the accelerator gave up on the guest
    Stopped,    // request_stop() from the host
    Error,      // a host-side failure (an ioctl failed)
    DebugExit,  // the guest wrote its verdict to the debug-exit port
                // (devices/platform/debug_exit.h)
};

struct MachineExit {
    MachineExitKind kind;
    std::string message;
    std::uint64_t debug_status = 0;  // DebugExit: (V << 1) | 1
};

// The vCPU count and RAM size are in range.
Result<void> validate_machine_size(const MachineConfig& config);

class Machine {
public:
    static Result<std::unique_ptr<Machine>> create(Accelerator& accel, const MachineConfig& config,
                                                   Console& console);
    // A machine brought back from a snapshot (machine_snapshot.cpp): `config` must describe the
    // same hardware as the snapshot's (paths and taps may differ), `memory` holds the guest's
    // RAM as it was (laid out for config.memory). The machine starts paused: run() parks the
    // vCPUs until resume().
    static Result<std::unique_ptr<Machine>> restore(Accelerator& accel, const MachineConfig& config,
                                                    Console& console, GuestMemory memory,
                                                    const SnapshotContents& snapshot,
                                                    bool keep_vm_id = false);
    // restore() in two steps, for a live migration's destination, which builds the VM while
    // the pages still arrive and applies the state only at the switch-over:
    // prepare_restore() validates `config` and builds the VM, its memory slots, devices and
    // vCPUs around `memory` (no state yet); the RAM is then filled through incoming_memory(), and
    // finish_restore() checks the snapshot's layout and applies its state. With
    // config.defer_disk_locks the disks are opened unlocked (the source still holds them) and
    // finish_restore() takes the locks, failing if someone else has them.
    static Result<std::unique_ptr<Machine>> prepare_restore(Accelerator& accel,
                                                            const MachineConfig& config,
                                                            Console& console, GuestMemory memory);
    Result<void> finish_restore(Accelerator& accel, const MachineConfig& config,
                                const SnapshotContents& snapshot, bool keep_vm_id);
    // Guest RAM to be written by the migration receiver between the two steps, while no vCPU
    // exists. Writes go through GuestMemory (the accelerator's write observer hears them).
    GuestMemory& incoming_memory() { return m_memory; }
    // Every component's state as snapshot sections (not RAM: see memory()). Only while paused.
    Result<SnapshotContents> save_state();
    const GuestMemory& memory() const { return m_memory; }
    // Pages written since the last call, by the guest (KVM's dirty log) or by devices (the
    // VMM's marks), one bitmap per RAM region (bit i of word i/64 = page i). Needs
    // track_dirty_pages; the first call after boot or restore reports every page written since.
    Result<std::vector<std::vector<std::uint64_t>>> take_dirty_pages();
    // Live migration (migration/migration_sender.h): starts or stops the dirty log while the VM
    // runs (with track_dirty_pages it is on anyway and stays on), and takes the pages dirtied
    // since the last take, as take_dirty_pages() does. Pages a migration takes are kept for the
    // next Diff snapshot, which still reports them.
    Result<void> set_migration_dirty_log(bool on);
    Result<std::vector<std::vector<std::uint64_t>>> take_migration_dirty_pages();
    // The CPUID table vCPU 0 was given and its TSC frequency (kHz, 0 when unknown): what a
    // migration destination checks its CPU against.
    const std::vector<CpuidEntry>& guest_cpuid() const { return m_guest_cpuid; }
    std::uint32_t guest_tsc_khz() const { return m_guest_tsc_khz; }
    ~Machine();

    // Runs the VM to its end on vCPU threads; the calling thread waits. Call once.
    MachineExit run();
    // Thread-safe: ends run() with Stopped.
    void request_stop(std::string reason);
    // Stops every vCPU (each parks outside KVM_RUN) and every device queue, within `timeout`;
    // saves the guest clock. From a control thread while run() is running. An error leaves the
    // machine running.
    Result<void> pause(std::chrono::milliseconds timeout = std::chrono::seconds(2));
    // Puts the guest clock back and lets vCPUs and devices go on.
    Result<void> resume();
    bool paused() const;
    // Holds every vCPU back `percent` (0 to 99) of the time, in slices of kThrottleSlice: a live
    // migration's auto-converge, when the guest dirties memory faster than the link carries it.
    // Thread-safe; 0 ends it.
    void set_vcpu_throttle(unsigned percent);
    static constexpr std::chrono::milliseconds kThrottleSlice{10};
    // Points disk `index` (0 = vda) at another image and tells the guest its capacity changed.
    Result<void> replace_disk(std::size_t index, const std::string& path);
    // After a live migration: every NIC announces the guest's MAC on its tap
    // (VirtioNet::announce). Failures are logged, not fatal: the guest runs either way.
    void announce_network();
    // The rate limiter of disk `index` (command-line order), of NIC `index`'s receive or transmit
    // side, or of the entropy device; null when there is no such device. RateLimiter::update()
    // is callable from the VMM's thread while the device runs (PATCH).
    enum class LimitedDevice : std::uint8_t { Disk, NetRx, NetTx, Entropy };
    RateLimiter* rate_limiter(LimitedDevice which, std::size_t index = 0);
    // The virtio-balloon (MachineConfig::balloon); null without one. Its setters are callable
    // from the VMM's thread while the device runs (PATCH /balloon, /balloon/statistics).
    virtio::VirtioBalloon* balloon();
    // Live migration with shared storage: once the VM is paused, every disk lets go of its
    // image's lock so the destination can take it; if the migration fails, the locks are taken
    // back before the VM may run again (an error when another process took one meanwhile: then
    // the VM must stay paused). Paused only.
    Result<void> release_disk_locks();
    Result<void> retake_disk_locks();
    // Presses Ctrl-Alt-Del on the guest's keyboard (i8042).
    Result<void> send_ctrl_alt_del();
    // Gives the guest a new VM generation ID and tells it so (ACPI GED interrupt, Notify 0x80):
    // restore() does it for every restored VM, so the guest reseeds its RNG. Thread-safe, paused
    // or running.
    Result<void> regenerate_vm_id();
    VmGenId* vm_gen_id() { return m_vm_gen_id.get(); }
    // Counters for the metrics line: exits per reason, per-device requests/bytes/errors, as JSON
    // members (no surrounding braces).
    std::string metrics_json() const;

    // Exit counters per vCPU and unclaimed I/O; valid after run() returned.
    std::string exit_summary() const;

private:
    explicit Machine(GuestMemory memory, Console& console)
        : m_memory(std::move(memory)), m_console(console) {}
    Result<void> build(Accelerator& accel, const MachineConfig& config);
    // The VM, its memory slots and every device, without a kernel or vCPUs: the part that boot
    // and restore share.
    Result<void> build_platform(Accelerator& accel, const MachineConfig& config);
    Result<void> restore_state(Accelerator& accel, const MachineConfig& config,
                               const SnapshotContents& snapshot, bool keep_vm_id);
    // The guest's and the devices' dirty pages since the last call (one bitmap per region).
    Result<std::vector<std::vector<std::uint64_t>>> collect_dirty_pages();
    Result<void> setup_devices();
    // The PCI root and the virtio devices on it (machine_pci.cpp).
    Result<void> setup_pci(const MachineConfig& config);
    Result<void> add_virtio(std::unique_ptr<virtio::VirtioDevice> device);
    // The VM generation ID device (boot and restore), in machine_vm_gen_id.cpp.
    Result<void> setup_vm_gen_id();
    Result<void> setup_vcpus(Accelerator& accel, std::uint32_t cpus, bool smt,
                             const loader::LoadedKernel& kernel);
    void vcpu_loop(Vcpu& vcpu);
    // First event wins; later ones are ignored. Stops every vCPU.
    void post(MachineExitKind kind, std::string message, std::uint64_t debug_status = 0);
    // machine_test_devices.cpp: QEMU's isa-debug-exit at port 0xf4 (--debug-exit, and every
    // multiboot kernel) and fw_cfg's I/O ports (multiboot kernels).
    Result<void> add_test_devices(const MachineConfig& config, loader::KernelFormat format);

    // Declaration order is destruction order reversed: devices (and their threads) go before
    // the IRQ lines, the VM and the memory they use.
    GuestMemory m_memory;
    Console& m_console;
    PanicDetector m_panic;
    std::unique_ptr<Vm> m_vm;
    std::vector<std::unique_ptr<Vcpu>> m_vcpus;
    std::vector<std::unique_ptr<IrqLine>> m_irq_lines;
    std::vector<std::unique_ptr<SharedIrqLine>> m_shared_irqs;  // by GSI - 16, PCI INTx
    std::shared_ptr<PciRoot> m_pci;
    std::vector<std::shared_ptr<virtio::VirtioPciDevice>> m_virtio;
    virtio::VirtioConsole* m_virtio_console = nullptr;  // owned by its entry in m_virtio
    virtio::VirtioBalloon* m_balloon = nullptr;         // owned by its entry in m_virtio
    std::vector<DiskConfig> m_disks;  // m_virtio[i] is disk i for i < m_disks.size()
    IoBus m_pio;
    IoBus m_mmio;
    // Every device with its placement: snapshot, ACPI, pause/resume and metrics walk it. The
    // typed pointers around it are handles for the operations only one device has.
    ComponentRegistry m_components{m_pio, m_mmio};
    std::unique_ptr<MachineIo> m_io;
    std::shared_ptr<Serial8250> m_serial;
    std::shared_ptr<I8042> m_i8042;
    std::shared_ptr<CmosRtc> m_cmos;
    bool m_track_dirty = false;
    std::atomic<bool> m_migration_log{false};
    std::atomic<unsigned> m_throttle{0};
    std::mutex m_dirty_mutex;
    std::vector<std::vector<std::uint64_t>> m_dirty_carry;  // guarded by m_dirty_mutex
    std::vector<CpuidEntry> m_guest_cpuid;
    std::uint32_t m_guest_tsc_khz = 0;
    std::shared_ptr<VmGenId> m_vm_gen_id;

    mutable std::mutex m_mutex;
    std::condition_variable m_cv;
    std::optional<MachineExit> m_exit;  // guarded by m_mutex
    std::atomic<bool> m_stopping{false};
    // Pause handshake (guarded by m_mutex): vCPU threads park while m_pause_requested and count
    // themselves in m_parked; m_cv wakes both sides.
    bool m_pause_requested = false;
    bool m_paused = false;
    std::uint32_t m_parked = 0;
    std::uint32_t m_running_vcpus = 0;
    std::uint64_t m_paused_clock = 0;
    std::vector<std::uint64_t> m_paused_tscs;  // per vCPU, read with m_paused_clock
};

}  // namespace vireo
