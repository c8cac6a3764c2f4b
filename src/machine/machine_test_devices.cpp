// The devices test kernels expect from QEMU (issue 13): the isa-debug-exit port that ends the VMM
// with the kernel's verdict, and fw_cfg's CPU count and RAM size. Multiboot kernels get both
// (they are test kernels: the KVM unit tests and their kind); --debug-exit gives any guest the
// port. A Linux guest booted without --debug-exit sees neither.
#include "devices/platform/debug_exit.h"
#include "devices/platform/fw_cfg.h"
#include "machine/machine.h"

namespace vireo {

Result<void> Machine::add_test_devices(const MachineConfig& config, loader::KernelFormat format) {
    const bool multiboot = format == loader::KernelFormat::Multiboot;
    if (config.debug_exit || multiboot) {
        auto exit = std::make_shared<DebugExit>([this](std::uint64_t status) {
            post(MachineExitKind::DebugExit,
                 fmt::format("the guest wrote {:#x} to the debug-exit port", status >> 1), status);
        });
        if (auto r = m_components.add("debug-exit", exit,
                                      {.ports = {{DebugExit::kPort, DebugExit::kPorts, exit}}});
            !r) {
            return r;
        }
    }
    if (multiboot) {
        auto fw_cfg =
            std::make_shared<FwCfg>(static_cast<std::uint16_t>(config.cpus), m_memory.total_size());
        return m_components.add("fw-cfg", fw_cfg,
                                {.ports = {{FwCfg::kPort, FwCfg::kPorts, fw_cfg}}});
    }
    return ok();
}

}  // namespace vireo
