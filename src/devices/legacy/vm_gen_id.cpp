#include "devices/legacy/vm_gen_id.h"

#include <sys/random.h>

#include <cerrno>

#include <fmt/format.h>

namespace vireo {

namespace {

Result<void> host_random(std::span<std::uint8_t> out) {
    std::size_t done = 0;
    while (done < out.size()) {
        const ssize_t n = ::getrandom(out.data() + done, out.size() - done, 0);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return Error::from_errno("vmgenid: getrandom");
        }
        done += static_cast<std::size_t>(n);
    }
    return ok();
}

}  // namespace

Result<std::unique_ptr<VmGenId>> VmGenId::create(GuestMemory& memory, GuestAddress address,
                                                 IrqLine& irq, RandomSource random) {
    if (address.value % 8 != 0 || !memory.contains_range(address, kSize)) {
        return Error(
            fmt::format("vmgenid: {:#x} is not an 8-byte aligned address of 16 bytes of guest RAM",
                        address.value));
    }
    if (!random) {
        random = host_random;
    }
    std::unique_ptr<VmGenId> dev(new VmGenId(memory, address, irq, std::move(random)));
    std::array<std::uint8_t, kSize> id{};
    if (auto r = dev->m_random(id); !r) {
        return r.error();
    }
    std::lock_guard lock(dev->m_mutex);
    if (auto r = dev->write_id(id); !r) {
        return r.error();
    }
    return dev;
}

std::array<std::uint8_t, 16> VmGenId::generation_id() const {
    std::lock_guard lock(m_mutex);
    return m_s.generation_id;
}

Result<void> VmGenId::write_id(const std::array<std::uint8_t, 16>& id) {
    if (auto r = m_memory.write(m_address, id); !r) {
        return r.error().wrap("vmgenid");
    }
    m_s.generation_id = id;
    return ok();
}

Result<void> VmGenId::regenerate() {
    std::array<std::uint8_t, kSize> id{};
    if (auto r = m_random(id); !r) {
        return r;
    }
    std::lock_guard lock(m_mutex);
    if (auto r = write_id(id); !r) {
        return r;
    }
    // The ID is in guest memory before the interrupt: the guest's handler reads it after this
    // edge (the ioctl behind set_level orders the store before the injection). The GED line is
    // edge-triggered (its _CRS says so), so one rising edge is one event; lowering it at once
    // leaves the line ready for the next.
    m_irq.set_level(true);
    m_irq.set_level(false);
    return ok();
}

VmGenIdState VmGenId::save_state() const {
    std::lock_guard lock(m_mutex);
    return m_s;
}

Result<void> VmGenId::restore_state(const VmGenIdState& state) {
    std::lock_guard lock(m_mutex);
    return write_id(state.generation_id);
}

}  // namespace vireo
