#include "probe/probe_guest.h"

#include <condition_variable>
#include <thread>

#include <fmt/format.h>

namespace vireo::probe {

namespace {

std::uint64_t to_value(std::span<const std::uint8_t> data) {
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < data.size() && i < 8; ++i) {
        v |= static_cast<std::uint64_t>(data[i]) << (8 * i);
    }
    return v;
}

void fill(std::span<std::uint8_t> data, std::uint64_t v) {
    for (std::size_t i = 0; i < data.size(); ++i) {
        data[i] = i < 8 ? static_cast<std::uint8_t>(v >> (8 * i)) : 0xff;
    }
}

// GDT entries (SDM Vol. 3 §3.4.5): base 0, limit 0xfffff pages.
constexpr std::uint64_t kGdt[] = {
    0,                      // 0x00 null
    0x00af9a000000ffffULL,  // 0x08 kernel code: present, DPL0, code exec/read, L=1, G=1
    0x00cf92000000ffffULL,  // 0x10 kernel data: present, DPL0, data read/write, D/B=1, G=1
    0x00affa000000ffffULL,  // 0x18 user code: as 0x08 with DPL3
    0x00cff2000000ffffULL,  // 0x20 user data: as 0x10 with DPL3
    0,                      // 0x28 TSS descriptor (16 bytes in long mode), filled below
    0,
};
constexpr std::uint16_t kTssSelector = 0x28;
constexpr std::uint32_t kTssLimit = 0x67;  // 104-byte 64-bit TSS (SDM Vol. 3 §7.7)

Segment flat_segment(std::uint16_t selector, std::uint8_t type, std::uint8_t dpl, bool code64) {
    Segment s;
    s.base = 0;
    s.limit = 0xffffffff;
    s.selector = selector;
    s.type = type;
    s.present = 1;
    s.dpl = dpl;
    s.s = 1;
    s.l = code64 ? 1 : 0;
    s.db = code64 ? 0 : 1;  // D must be 0 when L is 1
    s.g = 1;
    return s;
}

}  // namespace

void RecordingIo::record(IoAccess a) {
    std::function<void(const IoAccess&)> cb;
    {
        std::lock_guard lock(m_mutex);
        m_accesses.push_back(a);
        cb = m_on_access;
    }
    if (cb) {
        cb(a);
    }
}

std::uint64_t RecordingIo::read_value(std::uint64_t address) const {
    std::lock_guard lock(m_mutex);
    auto it = m_read_values.find(address);
    return it == m_read_values.end() ? ~0ULL : it->second;
}

void RecordingIo::pio_read(std::uint16_t port, std::span<std::uint8_t> data) {
    fill(data, read_value(port));
    record({IoAccess::Kind::PioRead, port, data.size(), to_value(data)});
}

void RecordingIo::pio_write(std::uint16_t port, std::span<const std::uint8_t> data) {
    record({IoAccess::Kind::PioWrite, port, data.size(), to_value(data)});
}

void RecordingIo::mmio_read(std::uint64_t address, std::span<std::uint8_t> data) {
    fill(data, read_value(address));
    record({IoAccess::Kind::MmioRead, address, data.size(), to_value(data)});
}

void RecordingIo::mmio_write(std::uint64_t address, std::span<const std::uint8_t> data) {
    record({IoAccess::Kind::MmioWrite, address, data.size(), to_value(data)});
}

std::vector<IoAccess> RecordingIo::accesses() const {
    std::lock_guard lock(m_mutex);
    return m_accesses;
}

Result<std::unique_ptr<ProbeGuest>> ProbeGuest::create(Accelerator& accel, CpuMode mode,
                                                       std::span<const std::uint8_t> code,
                                                       std::uint64_t ram_size) {
    auto built = build(accel, ram_size);
    if (!built) {
        return built.error();
    }
    auto g = std::move(built).value();
    if (auto r = g->m_memory.write(GuestAddress(kCodeAddress), code); !r) {
        return r.error().wrap("probe guest code");
    }
    // KVM refuses EFER.LME unless the guest's CPUID has long mode: give it what KVM supports.
    auto cpuid = accel.supported_cpuid();
    if (!cpuid) {
        return cpuid.error();
    }
    if (auto r = g->m_vcpu->set_cpuid(*cpuid); !r) {
        return r.error();
    }
    auto r =
        mode == CpuMode::Real ? g->setup_real_mode() : g->setup_long_mode(mode == CpuMode::User64);
    if (!r) {
        return r.error();
    }
    return g;
}

Result<std::unique_ptr<ProbeGuest>> ProbeGuest::restore(Accelerator& accel,
                                                        std::span<const std::uint8_t> ram,
                                                        const VcpuState& vcpu) {
    auto built = build(accel, ram.size());
    if (!built) {
        return built.error();
    }
    auto g = std::move(built).value();
    if (auto r = g->m_memory.write(GuestAddress(0), ram); !r) {
        return r.error().wrap("probe guest RAM");
    }
    if (auto r = g->m_vcpu->restore_state(vcpu); !r) {
        return r.error();
    }
    return g;
}

Result<std::unique_ptr<ProbeGuest>> ProbeGuest::build(Accelerator& accel, std::uint64_t ram_size) {
    if (ram_size < 0x10000 || ram_size > kUnmappedAddress || ram_size % kPageSize != 0) {
        return Error(fmt::format("probe guest: RAM size {:#x} out of range", ram_size));
    }
    const MemoryRegionSpec spec{GuestAddress(0), ram_size};
    auto mem = GuestMemory::create(std::span(&spec, 1));
    if (!mem) {
        return mem.error();
    }
    std::unique_ptr<ProbeGuest> g(new ProbeGuest(std::move(mem).value()));
    auto vm = accel.create_vm(VmOptions{.irqchip = false});
    if (!vm) {
        return vm.error();
    }
    g->m_vm = std::move(vm).value();
    g->m_memory.set_write_observer(g->m_vm->host_write_observer());
    const auto& region = g->m_memory.regions()[0];
    if (auto r = g->m_vm->map_memory({0, region.start, region.size, region.host, false, true});
        !r) {
        return r.error();
    }
    auto vcpu = g->m_vm->create_vcpu(0);
    if (!vcpu) {
        return vcpu.error();
    }
    g->m_vcpu = std::move(vcpu).value();
    return g;
}

Result<void> ProbeGuest::setup_real_mode() {
    auto sregs = m_vcpu->get_sregs();
    if (!sregs) {
        return sregs.error();
    }
    Sregs s = *sregs;
    for (Segment* seg : {&s.cs, &s.ds, &s.es, &s.fs, &s.gs, &s.ss}) {
        seg->base = 0;
        seg->selector = 0;
        seg->limit = 0xffff;
    }
    s.cr0 &= ~(x86::kCr0Pe | x86::kCr0Pg);
    if (auto r = m_vcpu->set_sregs(s); !r) {
        return r;
    }
    Regs regs;
    regs.rip = kCodeAddress;
    regs.rsp = kStackTop;
    return m_vcpu->set_regs(regs);
}

Result<void> ProbeGuest::setup_long_mode(bool user) {
    // Identity map of the first GiB with 2 MiB pages. Present | writable | user on every level so
    // the same tables serve CPL3 code.
    constexpr std::uint64_t kPresentRwUser = 0x7;
    constexpr std::uint64_t kPageSize2M = 0x80;
    auto w = m_memory.write_obj(GuestAddress(kPml4Address), kPdptAddress | kPresentRwUser);
    if (w) {
        w = m_memory.write_obj(GuestAddress(kPdptAddress), kPdAddress | kPresentRwUser);
    }
    for (std::uint64_t i = 0; w && i < 512; ++i) {
        w = m_memory.write_obj(GuestAddress(kPdAddress + i * 8),
                               (i << 21) | kPresentRwUser | kPageSize2M);
    }
    // GDT with a 64-bit TSS descriptor (SDM Vol. 3 §7.2.3): type 9 (available), present.
    std::uint64_t gdt[std::size(kGdt)];
    std::copy(std::begin(kGdt), std::end(kGdt), gdt);
    gdt[kTssSelector / 8] = kTssLimit | ((kTssAddress & 0xffffff) << 16) | (0x89ULL << 40) |
                            (((kTssAddress >> 24) & 0xff) << 56);
    gdt[kTssSelector / 8 + 1] = kTssAddress >> 32;
    for (std::size_t i = 0; w && i < std::size(gdt); ++i) {
        w = m_memory.write_obj(GuestAddress(kGdtAddress + i * 8), gdt[i]);
    }
    if (!w) {
        return w.error().wrap("probe guest page tables");
    }

    auto sregs = m_vcpu->get_sregs();
    if (!sregs) {
        return sregs.error();
    }
    Sregs s = *sregs;
    const std::uint8_t dpl = user ? 3 : 0;
    const auto code_sel = static_cast<std::uint16_t>(user ? (0x18 | 3) : 0x08);
    const auto data_sel = static_cast<std::uint16_t>(user ? (0x20 | 3) : 0x10);
    s.cs = flat_segment(code_sel, 0xb, dpl, true);  // type 0xb: execute/read, accessed
    s.ds = s.es = s.fs = s.gs = s.ss = flat_segment(data_sel, 0x3, dpl, false);  // read/write
    s.tr = Segment{};
    s.tr.base = kTssAddress;
    s.tr.limit = kTssLimit;
    s.tr.selector = kTssSelector;
    s.tr.type = 0xb;  // busy 64-bit TSS, as the CPU has it after LTR
    s.tr.present = 1;
    s.ldt = Segment{};
    s.ldt.type = 0x2;
    s.ldt.unusable = 1;
    s.gdt = {kGdtAddress, static_cast<std::uint16_t>(sizeof(gdt) - 1)};
    s.idt = {0, 0};
    s.cr3 = kPml4Address;
    s.cr4 = x86::kCr4Pae;
    s.cr0 = x86::kCr0Pe | x86::kCr0Mp | x86::kCr0Et | x86::kCr0Ne | x86::kCr0Wp | x86::kCr0Pg;
    s.efer = x86::kEferLme | x86::kEferLma;
    if (auto r = m_vcpu->set_sregs(s); !r) {
        return r;
    }
    Regs regs;
    regs.rip = kCodeAddress;
    regs.rsp = kStackTop;
    if (user) {
        regs.rflags |= 3ULL << x86::kRflagsIoplShift;  // IOPL=3: CPL3 may use IN/OUT
    }
    return m_vcpu->set_regs(regs);
}

Result<VcpuExit> ProbeGuest::run(IoHandler& io, std::chrono::milliseconds timeout) {
    std::mutex mutex;
    std::condition_variable cv;
    bool done = false;
    m_timed_out = false;
    std::thread watchdog([&] {
        std::unique_lock lock(mutex);
        if (!cv.wait_for(lock, timeout, [&] { return done; })) {
            m_timed_out = true;
            m_vcpu->request_exit();
        }
    });
    auto result = m_vcpu->run(io);
    {
        std::lock_guard lock(mutex);
        done = true;
    }
    cv.notify_one();
    watchdog.join();
    return result;
}

}  // namespace vireo::probe
