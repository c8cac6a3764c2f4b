// Building and running one machine: memory, the VM, devices through the registry, the kernel,
// the vCPUs and their loop, pause/resume. About 520 lines: the PCI devices, snapshots, the VM
// generation ID and the test devices are already in machine_*.cpp; what is left is one
// sequence (build, run, stop) that reads best in one place.
#include "machine/machine.h"
#include "machine/vcpu_report.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <thread>

#include <fmt/format.h>

#include "acpi/acpi_tables.h"
#include "arch/x86_64/boot_cpu.h"
#include "arch/x86_64/cpuid.h"
#include "arch/x86_64/kernel_loader.h"
#include "arch/x86_64/memory_layout.h"
#include "base/read_file.h"
#include "base/size.h"
#include "base/unique_fd.h"
#include "devices/legacy/acpi_pm.h"
#include "devices/legacy/cmos_rtc.h"
#include "devices/legacy/i8042.h"
#include "seccomp/seccomp.h"

namespace vireo {

namespace {

// Legacy PC port assignments.
constexpr std::uint16_t kCom1Port = 0x3f8;
constexpr std::uint8_t kCom1Irq = 4;
constexpr std::uint16_t kI8042Port = 0x60;
constexpr std::uint8_t kI8042Irq = 1;  // ISA IRQ 1: keyboard
constexpr std::uint16_t kCmosPort = 0x70;
// Hardware-reduced ACPI registers (sleep control, sleep status, reset), named in the FADT.
constexpr std::uint16_t kAcpiPmPort = 0x600;
constexpr std::uint8_t kAcpiResetValue = 0x1;
constexpr std::uint8_t kS5SleepType = 5;

}  // namespace

Result<void> validate_machine_size(const MachineConfig& config) {
    if (config.cpus == 0 || config.cpus > kMaxVcpus) {
        return Error(fmt::format("cpus: {} out of range 1..{}", config.cpus, kMaxVcpus));
    }
    if (config.memory < layout::kMinMemory || config.memory > layout::kMaxMemory ||
        config.memory % kPageSize != 0) {
        return Error(fmt::format("memory: {} must be a multiple of 4 KiB between {} and {}",
                                 format_size(config.memory), format_size(layout::kMinMemory),
                                 format_size(layout::kMaxMemory)));
    }
    return ok();
}

Result<std::unique_ptr<Machine>> Machine::create(Accelerator& accel, const MachineConfig& config,
                                                 Console& console) {
    if (auto r = validate_machine_size(config); !r) {
        return r.error();
    }
    const auto regions = layout::ram_regions(config.memory);
    auto mem = GuestMemory::create(
        regions,
        MemoryOptions{.memfd = config.memfd, .hugepages = true, .hugetlb = config.hugetlb});
    if (!mem) {
        return mem.error();
    }
    std::unique_ptr<Machine> m(new Machine(std::move(mem).value(), console));
    if (auto r = m->build(accel, config); !r) {
        return r.error();
    }
    return m;
}

Machine::~Machine() {
    m_console.stop_input();
    // Device threads stop here, explicitly, before any member they use is destroyed.
    m_components.reset_all();
}

Result<void> Machine::build_platform(Accelerator& accel, const MachineConfig& config) {
    auto vm = accel.create_vm(VmOptions{.irqchip = true});
    if (!vm) {
        return vm.error();
    }
    m_vm = std::move(vm).value();
    // Before any device can write guest RAM; the VM outlives the devices (member order).
    m_memory.set_write_observer(m_vm->host_write_observer());
    m_track_dirty = config.track_dirty_pages;
    if (m_track_dirty) {
        m_memory.enable_dirty_tracking();  // device writes; KVM's dirty log has the vCPUs'
    }
    std::uint32_t slot = 0;
    for (const auto& r : m_memory.regions()) {
        if (auto res = m_vm->map_memory({slot++, r.start, r.size, r.host, false, m_track_dirty});
            !res) {
            return res.error();
        }
    }
    if (auto r = setup_devices(); !r) {
        return r;
    }
    if (auto r = setup_vm_gen_id(); !r) {
        return r;
    }
    return setup_pci(config);
}

Result<void> Machine::build(Accelerator& accel, const MachineConfig& config) {
    if (auto r = build_platform(accel, config); !r) {
        return r;
    }

    acpi::PlatformDescription platform;
    platform.num_cpus = config.cpus;
    platform.lapic_address = layout::kLapicAddress;
    platform.ioapic_address = layout::kIoapicAddress;
    platform.ioapic_id = static_cast<std::uint8_t>(config.cpus);
    platform.sleep_control_port = kAcpiPmPort + AcpiPm::kSleepControl;
    platform.sleep_status_port = kAcpiPmPort + AcpiPm::kSleepStatus;
    platform.reset_port = kAcpiPmPort + AcpiPm::kReset;
    platform.reset_value = kAcpiResetValue;
    platform.s5_sleep_type = kS5SleepType;
    platform.i8042 = true;
    platform.ecam = acpi::EcamDesc{layout::kPciEcamStart, 0, 0, layout::kPciEcamEndBus};
    platform.devices = m_components.acpi_devices();
    platform.keep_clear = {{layout::kVmGenIdAddress, VmGenId::kSize, "VM generation ID"}};
    auto tables = acpi::write_acpi_tables(m_memory, platform, GuestAddress(layout::kRsdpAddress),
                                          GuestAddress(layout::kAcpiTablesStart),
                                          GuestAddress(layout::kAcpiTablesEnd));
    if (!tables) {
        return tables.error().wrap("ACPI tables");
    }

    if (auto r = x86::install_reset_vector(m_memory, kAcpiPmPort + AcpiPm::kReset, kAcpiResetValue);
        !r) {
        return r;
    }

    // Kernel and initrd are outside input: neither may be larger than the guest's RAM.
    auto kernel = read_whole_file(config.kernel_path, config.memory);
    if (!kernel) {
        return kernel.error().wrap("kernel " + config.kernel_path);
    }
    std::vector<std::uint8_t> initrd;
    if (!config.initrd_path.empty()) {
        auto data = read_whole_file(config.initrd_path, config.memory);
        if (!data) {
            return data.error().wrap("initrd " + config.initrd_path);
        }
        initrd = std::move(data).value();
    }
    loader::BootConfig boot;
    boot.cmdline = config.cmdline;
    if (auto format = loader::detect_kernel_format(*kernel);
        format && *format == loader::KernelFormat::Multiboot) {
        // As GRUB and QEMU's -kernel: a multiboot kernel's command line starts with its own
        // file name (the KVM unit tests take their arguments after it).
        boot.cmdline =
            config.kernel_path + " " + config.cmdline;  // as QEMU: the space even when empty
    }
    boot.initrd = initrd;
    boot.e820 = layout::e820_map(config.memory);
    boot.rsdp_address = tables->rsdp.value;
    auto loaded = loader::load_kernel(m_memory, *kernel, boot);
    if (!loaded) {
        return loaded.error().wrap(config.kernel_path);
    }
    if (auto r = add_test_devices(config, loaded->format); !r) {
        return r;
    }
    return setup_vcpus(accel, config.cpus, config.smt, *loaded);
}

Result<void> Machine::setup_devices() {
    auto com1_irq = m_vm->create_irq_line(kCom1Irq);
    if (!com1_irq) {
        return com1_irq.error();
    }
    IrqLine& irq = **com1_irq;
    m_irq_lines.push_back(std::move(com1_irq).value());
    auto kbd_irq = m_vm->create_irq_line(kI8042Irq);
    if (!kbd_irq) {
        return kbd_irq.error();
    }
    IrqLine& kbd_line = **kbd_irq;
    m_irq_lines.push_back(std::move(kbd_irq).value());
    m_serial = std::make_shared<Serial8250>(irq, [this](std::span<const std::uint8_t> bytes) {
        m_console.write(bytes);
        m_panic.feed(bytes);
    });
    auto power_off = [this] { post(MachineExitKind::PowerOff, "the guest powered off"); };
    auto reset = [this] { post(MachineExitKind::Reset, "the guest asked for a reset"); };
    const std::uint64_t low = std::min(m_memory.total_size(), layout::kMmioHoleStart);
    const std::uint64_t high = m_memory.total_size() - low;

    m_i8042 = std::make_shared<I8042>(kbd_line, reset);
    m_cmos = std::make_shared<CmosRtc>(low, high);
    auto pm = std::make_shared<AcpiPm>(kS5SleepType, kAcpiResetValue, power_off, reset);
    // The section names ("serial", ...) are what snapshots have always called these devices.
    Result<void> r = m_components.add(
        "serial", m_serial,
        {.ports = {{kCom1Port, Serial8250::kPorts, m_serial}}, .gsis = {kCom1Irq}});
    if (r) {
        r = m_components.add(
            "i8042", m_i8042,
            {.ports = {{kI8042Port, I8042::kPorts, m_i8042}}, .gsis = {kI8042Irq}});
    }
    if (r) {
        // The RTC raises no interrupt (vireo's guests use the LAPIC timer and kvmclock).
        r = m_components.add("cmos", m_cmos, {.ports = {{kCmosPort, CmosRtc::kPorts, m_cmos}}});
    }
    if (r) {
        r = m_components.add("acpi-pm", pm, {.ports = {{kAcpiPmPort, AcpiPm::kPorts, pm}}});
    }
    if (!r) {
        return r;
    }
    m_io = std::make_unique<MachineIo>(m_pio, m_mmio);
    return ok();
}

Result<void> Machine::setup_vcpus(Accelerator& accel, std::uint32_t cpus, bool smt,
                                  const loader::LoadedKernel& kernel) {
    const bool long_mode = kernel.format == loader::KernelFormat::BzImage;
    auto supported = accel.supported_cpuid();
    if (!supported) {
        return supported.error();
    }
    std::uint32_t tsc_khz = 0;
    for (std::uint32_t id = 0; id < cpus; ++id) {
        auto vcpu = m_vm->create_vcpu(id);
        if (!vcpu) {
            return vcpu.error();
        }
        Vcpu& v = **vcpu;
        if (id == 0) {
            auto khz = v.tsc_khz();
            tsc_khz = khz ? *khz : 0;  // without it the guest measures the TSC itself
        }
        const auto cpuid = x86::shape_cpuid(*supported, {id, cpus, tsc_khz, smt ? 2U : 1U});
        if (id == 0) {
            m_guest_cpuid = cpuid;
            m_guest_tsc_khz = tsc_khz;
        }
        Result<void> r = v.set_cpuid(cpuid);
        if (r) {
            r = v.set_msrs(x86::boot_msrs());
        }
        if (r) {
            r = v.set_fpu(FpuState{});
        }
        if (!r) {
            return r;
        }
        auto lapic = v.get_lapic();
        if (!lapic) {
            return lapic.error();
        }
        x86::setup_lapic_lints(*lapic);
        if (auto lr = v.set_lapic(*lapic); !lr) {
            return lr;
        }
        // Only the boot CPU starts at the kernel entry; KVM holds the others in wait-for-SIPI
        // until the guest starts them.
        if (id == 0) {
            auto sregs = v.get_sregs();
            if (!sregs) {
                return sregs.error();
            }
            auto st = x86::setup_boot_cpu(
                m_memory, long_mode ? x86::EntryMode::Long64 : x86::EntryMode::Protected32,
                kernel.entry.value, kernel.boot_info.value, *sregs);
            if (!st) {
                return st.error();
            }
            st->regs.rax = kernel.entry_eax;  // multiboot: the bootloader magic
            Result<void> sr = v.set_sregs(st->sregs);
            if (sr) {
                sr = v.set_regs(st->regs);
            }
            if (!sr) {
                return sr;
            }
        }
        m_vcpus.push_back(std::move(vcpu).value());
    }
    return ok();
}

void Machine::post(MachineExitKind kind, std::string message, std::uint64_t debug_status) {
    {
        std::lock_guard lock(m_mutex);
        if (!m_exit) {
            m_exit = MachineExit{kind, std::move(message), debug_status};
        }
        m_stopping.store(true);
    }
    m_cv.notify_all();
    for (auto& v : m_vcpus) {
        v->request_exit();
    }
}

void Machine::request_stop(std::string reason) {
    post(MachineExitKind::Stopped, std::move(reason));
}

void Machine::set_vcpu_throttle(unsigned percent) {
    m_throttle.store(std::min(percent, 99U));
    m_cv.notify_all();
}

Result<void> Machine::pause(std::chrono::milliseconds timeout) {
    {
        std::unique_lock lock(m_mutex);
        if (m_paused) {
            return ok();
        }
        if (m_stopping.load()) {
            return Error("the VM is stopping");
        }
        m_pause_requested = true;
    }
    for (auto& v : m_vcpus) {
        v->request_exit();
    }
    {
        std::unique_lock lock(m_mutex);
        const bool all = m_cv.wait_for(
            lock, timeout, [this] { return m_parked == m_running_vcpus || m_stopping.load(); });
        if (!all || m_stopping.load()) {
            m_pause_requested = false;
            m_cv.notify_all();
            return Error(all ? "the VM is stopping"
                             : fmt::format("{} of {} vCPUs did not stop within {} ms",
                                           m_running_vcpus - m_parked, m_running_vcpus,
                                           timeout.count()));
        }
    }
    m_components.pause_all();
    // The guest clock and each vCPU's TSC at the same moment: a snapshot saves both, so a
    // restored guest finds them in agreement (the TSC keeps counting while paused, kvmclock
    // does not; reading the TSC only at snapshot time would put it ahead by the wait).
    auto clock = m_vm->get_clock();
    std::vector<std::uint64_t> tscs;
    for (auto& v : m_vcpus) {
        MsrEntry tsc{x86::kMsrTsc, 0};
        tscs.push_back(v->get_msrs(std::span(&tsc, 1)) ? tsc.data : 0);
    }
    std::lock_guard lock(m_mutex);
    m_paused_clock = clock ? *clock : 0;
    m_paused_tscs = std::move(tscs);
    m_paused = true;
    return ok();
}

Result<void> Machine::resume() {
    {
        std::lock_guard lock(m_mutex);
        if (!m_paused) {
            return ok();
        }
    }
    if (m_paused_clock != 0) {
        if (auto r = m_vm->set_clock(m_paused_clock); !r) {
            return r;
        }
    }
    m_components.resume_all();
    std::lock_guard lock(m_mutex);
    m_paused = false;
    m_pause_requested = false;
    m_cv.notify_all();
    return ok();
}

Result<void> Machine::send_ctrl_alt_del() {
    if (!m_i8042->send_ctrl_alt_del()) {
        return Error(
            "SendCtrlAltDel: the guest's keyboard is not scanning (no i8042 driver, or it disabled "
            "the keyboard) or its buffer is full");
    }
    return ok();
}

std::string Machine::metrics_json() const {
    std::string out = "\"vcpu\":{";
    std::array<std::uint64_t, static_cast<std::size_t>(ExitReason::Count_)> exits{};
    for (const auto& v : m_vcpus) {
        for (std::size_t i = 0; i < exits.size(); ++i) {
            exits[i] += v->stats()[static_cast<ExitReason>(i)];
        }
    }
    bool first = true;
    for (std::size_t i = 0; i < exits.size(); ++i) {
        out += fmt::format("{}\"exit_{}\":{}", first ? "" : ",",
                           to_string(static_cast<ExitReason>(i)), exits[i]);
        first = false;
    }
    return out + "},\"devices\":[" + m_components.metrics_json() + "]";
}

bool Machine::paused() const {
    std::lock_guard lock(m_mutex);
    return m_paused;
}

namespace {

// " (rip ... cs ... cr0 ...)": the vCPU's state at a crash, as far as it can be read.
std::string cpu_state_of(Vcpu& vcpu) {
    auto regs = vcpu.get_regs();
    auto sregs = vcpu.get_sregs();
    if (!regs || !sregs) {
        return "";
    }
    return fmt::format(
        " (rip {:#x} rsp {:#x} rflags {:#x} cs {:#x} cpl {} ss {:#x} cr0 {:#x} cr2 {:#x} cr3 {:#x} "
        "cr4 {:#x} efer {:#x} idt {:#x}+{:#x} gdt {:#x}+{:#x} tr {:#x})",
        regs->rip, regs->rsp, regs->rflags, sregs->cs.selector, sregs->cs.dpl, sregs->ss.selector,
        sregs->cr0, sregs->cr2, sregs->cr3, sregs->cr4, sregs->efer, sregs->idt.base,
        sregs->idt.limit, sregs->gdt.base, sregs->gdt.limit, sregs->tr.selector);
}

}  // namespace

void Machine::vcpu_loop(Vcpu& vcpu) {
    while (!m_stopping.load()) {
        {
            // Park while a pause is requested; the pause() caller counts parked vCPUs.
            std::unique_lock lock(m_mutex);
            if (m_pause_requested) {
                ++m_parked;
                m_cv.notify_all();
                m_cv.wait(lock, [this] { return !m_pause_requested || m_stopping.load(); });
                --m_parked;
                continue;
            }
        }
        if (const unsigned throttle = m_throttle.load(std::memory_order_relaxed); throttle != 0) {
            // Auto-converge: kicked every kThrottleSlice by run()'s thread, the vCPU sits out
            // throttle% of each slice (a pause or a stop ends the wait at once).
            std::unique_lock lock(m_mutex);
            m_cv.wait_for(lock, kThrottleSlice * throttle / 100, [this] {
                return m_pause_requested || m_stopping.load() || m_throttle.load() == 0;
            });
        }
        auto exit = vcpu.run(*m_io);
        if (!exit) {
            post(MachineExitKind::Error, exit.error().message());
            return;
        }
        switch (exit->kind) {
            case VcpuExitKind::Interrupted:
            case VcpuExitKind::Halt:
                continue;  // the loop condition decides
            case VcpuExitKind::PowerOff:
                post(MachineExitKind::PowerOff, "the guest powered off");
                return;
            case VcpuExitKind::Reset:
                post(MachineExitKind::Reset, "the guest asked for a reset");
                return;
            case VcpuExitKind::Shutdown:
            case VcpuExitKind::InternalError:
                // Where the guest was: what a report of a crashed guest needs first.
                post(MachineExitKind::Crash,
                     fmt::format("vCPU {}: {}{}", vcpu.id(), exit->detail, cpu_state_of(vcpu)));
                return;
        }
    }
}

MachineExit Machine::run() {
    m_console.start_input(
        [this](std::span<const std::uint8_t> bytes) {
            return m_virtio_console != nullptr ? m_virtio_console->queue_input(bytes)
                                               : m_serial->queue_input(bytes);
        },
        [this] { request_stop("quit from the console (Ctrl-A x)"); });
    std::vector<std::thread> threads;
    threads.reserve(m_vcpus.size());
    {
        std::lock_guard lock(m_mutex);
        m_running_vcpus = static_cast<std::uint32_t>(m_vcpus.size());
    }
    for (auto& v : m_vcpus) {
        threads.push_back(seccomp::spawn(seccomp::ThreadKind::Vcpu, [this, &v] {
            vcpu_loop(*v);
            std::lock_guard lock(m_mutex);
            --m_running_vcpus;
            m_cv.notify_all();
        }));
    }
    // A panicking guest either resets (panic=N) or spins forever: end the VM once the panic
    // report is complete, or a little after it started if it never completes.
    constexpr auto kPanicGrace = std::chrono::seconds(3);
    {
        std::unique_lock lock(m_mutex);
        while (!m_exit) {
            const bool throttled = m_throttle.load() != 0;
            m_cv.wait_for(lock, throttled ? kThrottleSlice : std::chrono::milliseconds(100));
            if (m_exit) {
                break;
            }
            if (throttled && !m_pause_requested) {
                for (auto& v : m_vcpus) {
                    v->request_exit();
                }
            }
            if (auto p = m_panic.panic();
                p &&
                (p->report_complete || std::chrono::steady_clock::now() - p->seen > kPanicGrace)) {
                lock.unlock();
                post(MachineExitKind::Crash, "guest kernel panic: " + p->reason);
                lock.lock();
            }
        }
    }
    for (auto& t : threads) {
        t.join();
    }
    m_console.stop_input();
    std::lock_guard lock(m_mutex);
    MachineExit exit = *m_exit;
    // A reset right after a panic (panic=-1) is the panic's doing.
    if (exit.kind == MachineExitKind::Reset) {
        if (auto p = m_panic.panic()) {
            exit = {MachineExitKind::Crash, "guest kernel panic: " + p->reason};
        }
    }
    return exit;
}

std::string Machine::exit_summary() const {
    std::string out;
    for (const auto& v : m_vcpus) {
        const auto& st = v->stats();
        out += fmt::format("vCPU {}: {} exits", v->id(), st.total());
        if (auto regs = v->get_regs()) {
            out += fmt::format(" (stopped at rip {:#x}", regs->rip);
            if (auto sregs = v->get_sregs()) {
                out += fmt::format(" cs {:#x} base {:#x} cr0 {:#x} efer {:#x}", sregs->cs.selector,
                                   sregs->cs.base, sregs->cr0, sregs->efer);
            }
            out += ")";
        }
        for (std::size_t i = 0; i < st.counts.size(); ++i) {
            if (st.counts[i] != 0) {
                out += fmt::format(", {} {}", to_string(static_cast<ExitReason>(i)), st.counts[i]);
            }
        }
        out += "\n";
        // The vCPU threads have ended: its whole state can be read.
        if (auto state = v->save_state()) {
            out += fmt::format("  vCPU {} state: {}\n", v->id(), vcpu_state_report(*state));
        }
    }
    out += fmt::format("unclaimed I/O: {} accesses", m_io ? m_io->unclaimed_total() : 0);
    if (m_io) {
        for (const auto& [key, n] : m_io->unclaimed()) {
            out += (key >> 63) ? fmt::format(", mmio {:#x}: {}", key & ~(1ULL << 63), n)
                               : fmt::format(", port {:#x}: {}", key, n);
        }
    }
    return out + "\n";
}

}  // namespace vireo
