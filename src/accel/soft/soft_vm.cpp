#include "accel/soft/soft_vm.h"

#include <unistd.h>

#include <ctime>

#include <fmt/format.h>

#include "accel/soft/soft_vcpu.h"

namespace vireo::soft {

namespace {
std::uint64_t monotonic_ns() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1000000000ULL +
           static_cast<std::uint64_t>(ts.tv_nsec);
}
}  // namespace

Result<void> SoftVm::map_memory(const MemorySlot& slot) {
    return m_memory.map(slot);
}

Result<std::unique_ptr<Vcpu>> SoftVm::create_vcpu(std::uint32_t id) {
    return std::unique_ptr<Vcpu>(std::make_unique<SoftVcpu>(*this, id));
}

Result<std::unique_ptr<IrqLine>> SoftVm::create_irq_line(std::uint32_t) {
    return Error("soft: interrupt lines need the userspace irqchip (not yet implemented)");
}

Result<std::unique_ptr<MsiRoute>> SoftVm::create_msi_route() {
    return Error("soft: MSI routes need the userspace irqchip (not yet implemented)");
}

Result<void> SoftVm::get_dirty_log(std::uint32_t slot, std::span<std::uint64_t> bitmap) {
    return m_memory.get_dirty_log(slot, bitmap);
}

Result<std::uint64_t> SoftVm::get_clock() {
    return static_cast<std::uint64_t>(static_cast<std::int64_t>(monotonic_ns()) +
                                      m_clock_offset_ns);
}

Result<void> SoftVm::set_clock(std::uint64_t ns) {
    m_clock_offset_ns = static_cast<std::int64_t>(ns) - static_cast<std::int64_t>(monotonic_ns());
    return ok();
}

Result<VmPlatformState> SoftVm::save_platform_state() {
    VmPlatformState s;
    s.accelerator = "soft";
    s.irqchip = false;
    return s;
}

Result<void> SoftVm::restore_platform_state(const VmPlatformState& state) {
    if (state.accelerator != "soft") {
        return Error(
            fmt::format("soft: cannot restore platform state saved by '{}'", state.accelerator));
    }
    if (state.irqchip) {
        return Error("soft: saved state has an irqchip, which soft does not implement yet");
    }
    return ok();
}

Result<void> SoftVm::add_ioevent(const IoEventAddress& where, int eventfd) {
    if (where.length != 1 && where.length != 2 && where.length != 4 && where.length != 8) {
        return Error(fmt::format("ioeventfd: bad length {}", where.length));
    }
    if (eventfd < 0) {
        return Error("ioeventfd: bad descriptor");
    }
    std::lock_guard lock(m_ioevent_mutex);
    for (const auto& e : m_ioevents) {
        if (e.where == where) {
            return Error(fmt::format("ioeventfd: {:#x} already registered", where.address));
        }
    }
    m_ioevents.push_back({where, eventfd});
    m_have_ioevents = true;
    return ok();
}

Result<void> SoftVm::remove_ioevent(const IoEventAddress& where, int eventfd) {
    std::lock_guard lock(m_ioevent_mutex);
    const auto n = std::erase_if(
        m_ioevents, [&](const IoEvent& e) { return e.where == where && e.fd == eventfd; });
    m_have_ioevents = !m_ioevents.empty();
    if (n == 0) {
        return Error(fmt::format("ioeventfd: {:#x} not registered", where.address));
    }
    return ok();
}

bool SoftVm::ioevent_write(bool mmio, std::uint64_t address, std::span<const std::uint8_t> data) {
    if (!m_have_ioevents.load(std::memory_order_relaxed)) {
        return false;
    }
    std::uint64_t value = 0;
    std::memcpy(&value, data.data(), std::min<std::size_t>(data.size(), 8));
    std::lock_guard lock(m_ioevent_mutex);
    for (const auto& e : m_ioevents) {
        if (e.where.mmio != mmio || e.where.address != address || e.where.length != data.size()) {
            continue;
        }
        if (e.where.datamatch && *e.where.datamatch != value) {
            continue;
        }
        const std::uint64_t one = 1;
        // A full counter (EAGAIN) still leaves the fd readable: nothing is lost.
        if (::write(e.fd, &one, sizeof(one)) < 0) {
            // EAGAIN: the counter is full, the fd stays readable; nothing is lost.
        }
        return true;
    }
    return false;
}

}  // namespace vireo::soft
