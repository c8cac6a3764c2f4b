// The soft irqchip: a 32-bit flat protected-mode guest (paging off, so the LAPIC page at
// 0xfee00000 and the IOAPIC at 0xfec00000 are reached by their physical addresses) takes
// interrupts from the LAPIC timer, an IOAPIC pin, an MSI route, and starts a second vCPU with
// INIT-SIPI.
#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>
#include <thread>

#include "memory/guest_memory.h"
#include "soft_guest.h"

namespace vireo::soft::test {
namespace {

using Bytes = std::vector<std::uint8_t>;

constexpr std::uint64_t kIdt = 0x20000, kHandler = 0x9000, kCode = 0x8000;

void put(Bytes& b, std::uint64_t v, int n) {
    for (int i = 0; i < n; ++i) {
        b.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
    }
}
// mov dword [addr], imm32 (C7 05 disp32 imm32)
void store(Bytes& b, std::uint32_t addr, std::uint32_t v) {
    b.insert(b.end(), {0xc7, 0x05});
    put(b, addr, 4);
    put(b, v, 4);
}

struct IrqGuest {
    std::unique_ptr<GuestMemory> mem;
    std::unique_ptr<Vm> vm;
    std::vector<std::unique_ptr<Vcpu>> cpus;

    IrqGuest(const Bytes& code, unsigned ncpu = 1) {
        const MemoryRegionSpec spec{GuestAddress(0), 0x100000};
        mem = std::make_unique<GuestMemory>(
            std::move(GuestMemory::create(std::span(&spec, 1))).value());
        SoftAccelerator accel;
        vm = std::move(accel.create_vm(VmOptions{.irqchip = true})).value();
        const auto& r = mem->regions()[0];
        EXPECT_TRUE(vm->map_memory({0, r.start, r.size, r.host, false, false}).ok());
        EXPECT_TRUE(mem->write(GuestAddress(kCode), code).ok());
        // GDT: null, flat 32-bit code 0x08, data 0x10. IDT: vectors 0x40-0x4f -> kHandler.
        const std::uint64_t gdt[] = {0, 0x00cf9a000000ffffULL, 0x00cf92000000ffffULL};
        for (std::size_t i = 0; i < 3; ++i) {
            EXPECT_TRUE(mem->write_obj(GuestAddress(0x500 + 8 * i), gdt[i]).ok());
        }
        for (std::uint64_t v = 0x40; v < 0x50; ++v) {
            const std::uint64_t gate = kHandler | (0x08ULL << 16) | (0x8eULL << 40);
            EXPECT_TRUE(mem->write_obj(GuestAddress(kIdt + 8 * v), gate).ok());
        }
        // Handler: inc esi; mov dword [0xfee000b0], 0 (EOI); iretd
        Bytes h = {0x46};
        store(h, 0xfee000b0, 0);
        h.push_back(0xcf);
        EXPECT_TRUE(mem->write(GuestAddress(kHandler), h).ok());
        for (unsigned id = 0; id < ncpu; ++id) {
            cpus.push_back(std::move(vm->create_vcpu(id)).value());
        }
        Vcpu& v = *cpus[0];
        Sregs s = *v.get_sregs();
        Segment flat;
        flat.limit = 0xffffffff;
        flat.present = 1;
        flat.s = 1;
        flat.db = 1;
        flat.g = 1;
        s.cs = flat;
        s.cs.selector = 0x08;
        s.cs.type = 0xb;
        s.ds = s.es = s.ss = s.fs = s.gs = flat;
        s.ds.selector = s.es.selector = s.ss.selector = 0x10;
        s.ds.type = s.es.type = s.ss.type = s.fs.type = s.gs.type = 3;
        s.gdt = {0x500, 23};
        s.idt = {kIdt, 0x7ff};
        s.cr0 = x86::kCr0Pe | x86::kCr0Et;
        EXPECT_TRUE(v.set_sregs(s).ok());
        Regs regs;
        regs.rip = kCode;
        regs.rsp = 0x7ff0;
        EXPECT_TRUE(v.set_regs(regs).ok());
    }
};

// Enables the LAPIC (SVR bit 8), runs `setup`, then: out 0x81, al; sti; hlt; mov al, 1;
// out 0x80, al; jmp $. The test's IoHandler acts on port 0x81 and stops at port 0x80.
Bytes program(const Bytes& setup) {
    Bytes c;
    store(c, 0xfee000f0, 0x1ff);
    c.insert(c.end(), setup.begin(), setup.end());
    c.insert(c.end(), {0xe6, 0x81, 0xfb, 0xf4, 0xb0, 0x01, 0xe6, 0x80, 0xeb, 0xfe});
    return c;
}

std::uint64_t run_until_done(IrqGuest& g, const std::function<void()>& on_81 = {}) {
    probe::RecordingIo io;
    Vcpu& v = *g.cpus[0];
    io.on_access([&](const probe::IoAccess& a) {
        if (a.address == 0x81 && on_81) {
            on_81();
        }
        if (a.address == 0x80) {
            v.request_exit();
        }
    });
    // A joined watchdog: stops a guest that never reports, and never outlives the vCPU.
    std::mutex mutex;
    std::condition_variable cv;
    bool finished = false;
    std::thread watchdog([&] {
        std::unique_lock lock(mutex);
        if (!cv.wait_for(lock, std::chrono::seconds(30), [&] { return finished; })) {
            v.request_exit();
        }
    });
    auto exit = v.run(io);
    {
        std::lock_guard lock(mutex);
        finished = true;
    }
    cv.notify_one();
    watchdog.join();
    EXPECT_TRUE(exit.ok());
    EXPECT_EQ(exit->kind, VcpuExitKind::Interrupted);
    return v.get_regs()->rsi;
}

TEST(SoftIrqchip, LapicTimerWakesHlt) {
    Bytes setup;
    store(setup, 0xfee00320, 0x40);     // LVT timer: vector 0x40, one-shot
    store(setup, 0xfee003e0, 0xb);      // divide by 1
    store(setup, 0xfee00380, 2000000);  // 2 ms
    IrqGuest g(program(setup));
    const auto t0 = std::chrono::steady_clock::now();
    EXPECT_EQ(run_until_done(g), 1U) << "one timer interrupt";
    EXPECT_GE(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(2));
    EXPECT_EQ(g.cpus[0]->get_lapic()->read(0x100 + 0x10 * (0x40 / 32)), 0U)
        << "ISR clear after EOI";
}

TEST(SoftIrqchip, IoapicPinAndMsiReachTheVcpu) {
    Bytes setup;
    store(setup, 0xfec00000, 0x10 + 2 * 5);  // redirection entry 5, low dword
    store(setup, 0xfec00010, 0x41);          // vector 0x41, fixed, physical, edge, unmasked
    store(setup, 0xfec00000, 0x10 + 2 * 5 + 1);
    store(setup, 0xfec00010, 0);  // destination APIC 0
    IrqGuest g(program(setup));
    auto line = g.vm->create_irq_line(5);
    ASSERT_TRUE(line.ok());
    auto msi = g.vm->create_msi_route();
    ASSERT_TRUE(msi.ok());
    ASSERT_TRUE((*msi)->set_message({0xfee00000, 0x42}).ok());
    EXPECT_EQ(run_until_done(g,
                             [&] {
                                 (*line)->set_level(true);
                                 (*line)->set_level(false);
                                 (*msi)->trigger();
                             }),
              2U)
        << "the IOAPIC pin and the MSI";
    EXPECT_FALSE(g.vm->create_irq_line(24).ok());
    auto saved = g.vm->save_platform_state();
    ASSERT_TRUE(saved.ok());
    EXPECT_EQ(saved->accelerator, "soft");
    EXPECT_TRUE(saved->irqchip);
    EXPECT_TRUE(g.vm->restore_platform_state(*saved).ok());
}

TEST(SoftIrqchip, InitSipiStartsTheSecondVcpu) {
    // BSP: ICR high = APIC 1; INIT (0x4500); SIPI vector 0x0a (0x460a); then spin until the
    // AP has written 0x55 at 0x7000: cmp byte [0x7000], 0x55; jne -9; done.
    Bytes c;
    store(c, 0xfee000f0, 0x1ff);
    store(c, 0xfee00310, 0x01000000);
    store(c, 0xfee00300, 0x4500);
    store(c, 0xfee00300, 0x460a);
    c.insert(c.end(), {0x80, 0x3d, 0x00, 0x70, 0x00, 0x00, 0x55, 0x75, 0xf7});
    c.insert(c.end(), {0xb0, 0x01, 0xe6, 0x80, 0xeb, 0xfe});
    IrqGuest g(c, 2);
    // AP, real mode at 0x0a00:0000: mov byte [0x7000], 0x55 (DS=0); hlt
    ASSERT_TRUE(g.mem->write(GuestAddress(0xa000), Bytes{0xc6, 0x06, 0x00, 0x70, 0x55, 0xf4}).ok());
    probe::RecordingIo ap_io;
    VcpuExitKind ap_exit = VcpuExitKind::InternalError;
    std::thread ap([&] {
        auto e = g.cpus[1]->run(ap_io);
        ap_exit = e.ok() ? e->kind : VcpuExitKind::InternalError;
    });
    run_until_done(g);
    g.cpus[1]->request_exit();
    ap.join();
    EXPECT_EQ(ap_exit, VcpuExitKind::Interrupted);
    EXPECT_EQ(*g.mem->read_obj<std::uint8_t>(GuestAddress(0x7000)), 0x55U);
    EXPECT_EQ(g.cpus[1]->get_sregs()->cs.selector, 0x0a00);
    // The vCPU state carries the LAPIC and whether the vCPU still waits for SIPI.
    auto started = g.cpus[1]->save_state();
    ASSERT_TRUE(started.ok());
    EXPECT_TRUE(started->has_lapic);
    EXPECT_EQ(started->mp_state, MpState::Halted) << "the AP halted";
    IrqGuest fresh(Bytes{0xf4}, 2);
    auto waiting = fresh.cpus[1]->save_state();
    ASSERT_TRUE(waiting.ok());
    EXPECT_EQ(waiting->mp_state, MpState::WaitForInit)
        << "an AP not yet started waits for INIT-SIPI";
}

}  // namespace
}  // namespace vireo::soft::test

namespace vireo::soft::test {
namespace {

TEST(SoftIrqchip, RequestExitWakesAHaltWithInterruptsOff) {
    IrqGuest g(Bytes{0xfa, 0xf4});  // cli; hlt: nothing but request_exit() can end this
    probe::RecordingIo io;
    Vcpu& v = *g.cpus[0];
    std::thread stopper([&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        v.request_exit();
    });
    const auto t0 = std::chrono::steady_clock::now();
    auto exit = v.run(io);
    stopper.join();
    ASSERT_TRUE(exit.ok());
    EXPECT_EQ(exit->kind, VcpuExitKind::Interrupted);
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(2));
}

TEST(SoftIrqchip, MsiStormFromAnotherThreadIsCountedExactly) {
    // (200 paced MSIs; the sender yields between looks so that it does not starve the vCPU
    // thread on a loaded 2-core machine.)
    // The guest counts interrupts in ESI until it has seen kStorm, then reports: sti; L:
    // cmp esi, kStorm; jb L; mov al, 1; out 0x80, al; jmp $. Each MSI is sent only after the
    // previous one was taken (an edge while the vector is still in IRR would merge).
    constexpr std::uint32_t kStorm = 200;
    Bytes c;
    store(c, 0xfee000f0, 0x1ff);
    c.insert(c.end(), {0xfb, 0x81, 0xfe});
    put(c, kStorm, 4);
    c.insert(c.end(), {0x72, 0xf8, 0xb0, 0x01, 0xe6, 0x80, 0xeb, 0xfe});
    IrqGuest g(c);
    auto msi = g.vm->create_msi_route();
    ASSERT_TRUE(msi.ok());
    ASSERT_TRUE((*msi)->set_message({0xfee00000, 0x43}).ok());
    std::atomic<bool> done{false};
    std::thread storm([&] {
        // Not before the guest has software-enabled its LAPIC (SVR bit 8): until then an MSI is
        // dropped, as on hardware.
        while (!done && (g.cpus[0]->get_lapic()->read(0xf0) & 0x100) == 0) {
            std::this_thread::yield();
        }
        std::uint32_t sent = 0;
        while (!done && sent < kStorm) {
            const auto isr = g.cpus[0]->get_lapic();  // racy read, only to pace the sender
            const bool in_irr = (isr->read(0x200 + 0x10 * (0x43 / 32)) >> (0x43 % 32)) & 1;
            if (!in_irr) {
                (*msi)->trigger();
                ++sent;
            }
            std::this_thread::yield();  // not a timed sleep: wakeups are slow on a busy box
        }
    });
    const auto count = run_until_done(g);
    done = true;
    storm.join();
    EXPECT_EQ(count, kStorm);
}

}  // namespace
}  // namespace vireo::soft::test

namespace vireo::soft::test {
namespace {

TEST(SoftIrqchip, TscDeadlineTimer) {
    // LVT timer: vector 0x44, TSC-deadline mode (bits 18:17 = 2); rdtsc; add eax, 1000000;
    // adc edx, 0; mov ecx, 0x6e0; wrmsr (IA32_TSC_DEADLINE), then the common sti; hlt tail.
    Bytes setup;
    store(setup, 0xfee00320, 0x44 | (2u << 17));
    setup.insert(setup.end(), {0x0f, 0x31, 0x05, 0x40, 0x42, 0x0f, 0x00, 0x83, 0xd2, 0x00, 0xb9,
                               0xe0, 0x06, 0x00, 0x00, 0x0f, 0x30});
    IrqGuest g(program(setup));
    EXPECT_EQ(run_until_done(g), 1U) << "one TSC-deadline interrupt";
    MsrEntry e{0x6e0, 0};
    EXPECT_FALSE(g.cpus[0]->get_msrs(std::span(&e, 1)).ok())
        << "IA32_TSC_DEADLINE is the LAPIC's, not part of the saved MSR list";
}

}  // namespace
}  // namespace vireo::soft::test
