#include "accel/kvm/kvm_irq_routing.h"

#include <sys/ioctl.h>

#include <cstdlib>
#include <cstring>

#include <fmt/format.h>

#include "accel/kvm/kvm_uapi.h"
#include "base/event_fd.h"

namespace vireo {

namespace {

// KVM's limit on the routing table (KVM_MAX_IRQ_ROUTES is 4096 on x86).
constexpr std::uint32_t kMaxGsi = 4096;
constexpr std::uint32_t kIoapicPins = 24;
constexpr std::uint32_t kPicPins = 16;

class KvmMsiRoute final : public MsiRoute {
public:
    KvmMsiRoute(KvmIrqRouting& routing, int vm_fd, std::uint32_t gsi, EventFd fd)
        : m_routing(routing), m_vm_fd(vm_fd), m_gsi(gsi), m_fd(std::move(fd)) {}
    ~KvmMsiRoute() override {
        kvm_irqfd irqfd{};
        irqfd.fd = static_cast<std::uint32_t>(m_fd.fd());
        irqfd.gsi = m_gsi;
        irqfd.flags = KVM_IRQFD_FLAG_DEASSIGN;
        static_cast<void>(::ioctl(m_vm_fd, KVM_IRQFD, &irqfd));
        m_routing.release(m_gsi);
    }
    Result<void> set_message(const MsiMessage& message) override {
        return m_routing.set_msi(m_gsi, message);
    }
    void trigger() override { m_fd.signal(); }

private:
    KvmIrqRouting& m_routing;
    int m_vm_fd;
    std::uint32_t m_gsi;
    EventFd m_fd;
};

}  // namespace

Result<std::unique_ptr<MsiRoute>> KvmIrqRouting::create_msi_route() {
    std::uint32_t gsi;
    {
        std::lock_guard lock(m_mutex);
        if (!m_free_gsis.empty()) {
            gsi = m_free_gsis.back();
            m_free_gsis.pop_back();
        } else if (m_next_gsi < kMaxGsi) {
            gsi = m_next_gsi++;
        } else {
            return Error("no free GSI for an MSI route");
        }
    }
    auto fd = EventFd::create();
    if (!fd) {
        release(gsi);
        return fd.error();
    }
    kvm_irqfd irqfd{};
    irqfd.fd = static_cast<std::uint32_t>(fd->fd());
    irqfd.gsi = gsi;
    if (::ioctl(m_vm_fd, KVM_IRQFD, &irqfd) < 0) {
        auto err = Error::from_errno(fmt::format("KVM_IRQFD gsi {}", gsi));
        release(gsi);
        return err;
    }
    return std::unique_ptr<MsiRoute>(
        std::make_unique<KvmMsiRoute>(*this, m_vm_fd, gsi, std::move(fd.value())));
}

Result<void> KvmIrqRouting::set_msi(std::uint32_t gsi, const MsiMessage& message) {
    std::lock_guard lock(m_mutex);
    auto it = m_msi.find(gsi);
    if (it != m_msi.end() && it->second == message) {
        return ok();  // unchanged: skip the ioctl (the guest rewrites entries on every unmask)
    }
    m_msi[gsi] = message;
    return commit();
}

void KvmIrqRouting::release(std::uint32_t gsi) {
    std::lock_guard lock(m_mutex);
    if (m_msi.erase(gsi) > 0) {
        static_cast<void>(commit());
    }
    m_free_gsis.push_back(gsi);
}

Result<void> KvmIrqRouting::commit() {
    const std::size_t count = kPicPins + kIoapicPins + m_msi.size();
    const std::size_t bytes = sizeof(kvm_irq_routing) + count * sizeof(kvm_irq_routing_entry);
    // kvm_irq_routing ends in a flexible array (kvm_uapi.h pins the layout): one raw allocation.
    std::vector<std::uint64_t> storage((bytes + 7) / 8, 0);
    auto* table = reinterpret_cast<kvm_irq_routing*>(storage.data());
    table->nr = static_cast<std::uint32_t>(count);
    kvm_irq_routing_entry* e = table->entries;
    for (std::uint32_t pin = 0; pin < kPicPins; ++pin) {
        e->gsi = pin;
        e->type = KVM_IRQ_ROUTING_IRQCHIP;
        e->u.irqchip.irqchip = pin < 8 ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE;
        e->u.irqchip.pin = pin % 8;
        ++e;
    }
    for (std::uint32_t pin = 0; pin < kIoapicPins; ++pin) {
        e->gsi = pin;
        e->type = KVM_IRQ_ROUTING_IRQCHIP;
        e->u.irqchip.irqchip = KVM_IRQCHIP_IOAPIC;
        e->u.irqchip.pin = pin;
        ++e;
    }
    for (const auto& [gsi, msg] : m_msi) {
        e->gsi = gsi;
        e->type = KVM_IRQ_ROUTING_MSI;
        e->u.msi.address_lo = static_cast<std::uint32_t>(msg.address);
        e->u.msi.address_hi = static_cast<std::uint32_t>(msg.address >> 32);
        e->u.msi.data = msg.data;
        ++e;
    }
    if (::ioctl(m_vm_fd, KVM_SET_GSI_ROUTING, table) < 0) {
        return Error::from_errno("KVM_SET_GSI_ROUTING");
    }
    return ok();
}

}  // namespace vireo
