// The VM's GSI routing table (KVM_SET_GSI_ROUTING) and the MSI routes that live in it.
//
// KVM_SET_GSI_ROUTING replaces the whole table, so the table always carries KVM's default
// irqchip routes as well (virt/kvm/irqchip.c, arch/x86/kvm/irq_comm.c default_routing: GSIs 0-15
// to the PIC pin and the IOAPIC pin of the same number, GSIs 16-23 to the IOAPIC only). MSI routes
// take GSIs from 24 upward; each has an irqfd, so a trigger is one eventfd write from any thread
// and the interrupt is injected by the kernel without a trip through a vCPU thread.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "base/result.h"
#include "irq/msi.h"

namespace vireo {

class KvmIrqRouting {
public:
    explicit KvmIrqRouting(int vm_fd) : m_vm_fd(vm_fd) {}

    Result<std::unique_ptr<MsiRoute>> create_msi_route();

    // For KvmMsiRoute: installs/changes/removes the MSI entry for `gsi` and pushes the table.
    Result<void> set_msi(std::uint32_t gsi, const MsiMessage& message);
    void release(std::uint32_t gsi);

private:
    Result<void> commit();  // m_mutex held

    int m_vm_fd;
    std::mutex m_mutex;
    std::uint32_t m_next_gsi = 24;
    std::vector<std::uint32_t> m_free_gsis;
    std::map<std::uint32_t, MsiMessage> m_msi;  // programmed MSI routes by GSI
};

}  // namespace vireo
