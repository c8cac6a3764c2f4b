#include "accel/soft/kvm_clock.h"

#include <atomic>
#include <cstring>
#include <ctime>

#include "accel/soft/phys_memory.h"

namespace vireo::soft {

namespace {

constexpr std::uint64_t kNsPerSecond = 1'000'000'000;
constexpr std::uint8_t kPvclockTscStable = 1;  // PVCLOCK_TSC_STABLE_BIT in flags

// struct pvclock_vcpu_time_info (arch/x86/include/asm/pvclock-abi.h), 32 bytes.
struct TimeInfo {
    std::uint32_t version;
    std::uint32_t pad0;
    std::uint64_t tsc_timestamp;
    std::uint64_t system_time;
    std::uint32_t tsc_to_system_mul;
    std::int8_t tsc_shift;
    std::uint8_t flags;
    std::uint8_t pad[2];
};
static_assert(sizeof(TimeInfo) == 32);

// struct pvclock_wall_clock, 12 bytes.
struct WallClock {
    std::uint32_t version;
    std::uint32_t sec;
    std::uint32_t nsec;
};
static_assert(sizeof(WallClock) == 12);

// Writes the `size` bytes at `bytes` over the structure at guest-physical `gpa` (its first 4
// bytes the version) the way the guest's reader expects (pvclock_read_begin/retry): the version
// odd while the fields change, then even and past the one before, with the stores ordered
// between; the pages written are marked as a guest store marks them. False, and nothing written,
// when the structure is not wholly inside one RAM slot or its version is misaligned (it is stored
// atomically; Linux's structures are aligned).
bool publish(PhysMemory& mem, std::uint64_t gpa, const void* bytes, std::size_t size) {
    const auto table = mem.table();
    RamSlot* slot = PhysMemory::find(*table, gpa);
    if (slot == nullptr || (gpa & 3) != 0 || slot->spec.size < size ||
        gpa - slot->spec.guest.value > slot->spec.size - size) {
        return false;
    }
    const std::uint64_t offset = gpa - slot->spec.guest.value;
    std::uint8_t* host = slot->host + offset;
    std::atomic_ref<std::uint32_t> version(*reinterpret_cast<std::uint32_t*>(host));
    const std::uint32_t odd = (version.load(std::memory_order_relaxed) + 1) | 1;
    version.store(odd, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_release);
    std::memcpy(host + 4, static_cast<const std::uint8_t*>(bytes) + 4, size - 4);
    std::atomic_thread_fence(std::memory_order_release);
    version.store(odd + 1, std::memory_order_relaxed);
    for (std::uint64_t page = offset >> kPageShift; page <= (offset + size - 1) >> kPageShift;
         ++page) {
        slot->on_write(page);
    }
    return true;
}

}  // namespace

PvclockScale pvclock_scale(std::uint64_t tsc_hz) {
    // ns per tick = 10^9 / hz = mul / 2^32 once the delta is shifted: the shift brings the
    // frequency into (1 GHz, 2 GHz], so mul lands in [2^31, 2^32) and keeps 31 bits of precision
    // (as KVM's kvm_get_time_scale). The division itself is exact, in 128 bits.
    PvclockScale s;
    std::uint64_t hz = tsc_hz;
    while (hz > 2 * kNsPerSecond) {
        hz >>= 1;
        --s.shift;
    }
    while (hz <= kNsPerSecond) {
        hz <<= 1;
        ++s.shift;
    }
    unsigned __int128 num = static_cast<unsigned __int128>(kNsPerSecond) << 32;
    unsigned __int128 den = tsc_hz;
    if (s.shift < 0) {
        num <<= -s.shift;
    } else {
        den <<= s.shift;
    }
    s.mul = static_cast<std::uint32_t>(num / den);
    return s;
}

std::uint64_t pvclock_ns(std::uint64_t delta, PvclockScale s) {
    delta = s.shift < 0 ? delta >> -s.shift : delta << s.shift;
    return static_cast<std::uint64_t>((static_cast<unsigned __int128>(delta) * s.mul) >> 32);
}

bool KvmClock::write_time_info(PhysMemory& mem, std::uint64_t msr, std::uint64_t guest_tsc,
                               std::uint32_t tsc_khz) {
    if ((msr & 1) == 0 || tsc_khz == 0) {
        return false;
    }
    Reference ref{};
    {
        std::lock_guard lock(m_mutex);
        if (!m_ref) {
            m_ref = Reference{guest_tsc, m_clock_ns()};
        }
        ref = *m_ref;
    }
    const PvclockScale scale = pvclock_scale(std::uint64_t{tsc_khz} * 1000);
    TimeInfo t{};
    t.tsc_timestamp = ref.tsc;
    t.system_time = ref.ns;
    t.tsc_to_system_mul = scale.mul;
    t.tsc_shift = scale.shift;
    t.flags = kPvclockTscStable;
    return publish(mem, msr & ~0x1fULL, &t, sizeof(t));
}

bool KvmClock::write_wall_clock(PhysMemory& mem, std::uint64_t gpa) {
    timespec now{};
    clock_gettime(CLOCK_REALTIME, &now);
    const std::uint64_t guest_ns = m_clock_ns();
    const std::uint64_t real_ns = static_cast<std::uint64_t>(now.tv_sec) * kNsPerSecond +
                                  static_cast<std::uint64_t>(now.tv_nsec);
    // The wall-clock time when the guest clock read zero (the guest adds its clock to it).
    const std::uint64_t boot_ns = real_ns > guest_ns ? real_ns - guest_ns : 0;
    WallClock w{};
    w.sec = static_cast<std::uint32_t>(boot_ns / kNsPerSecond);
    w.nsec = static_cast<std::uint32_t>(boot_ns % kNsPerSecond);
    return publish(mem, gpa, &w, sizeof(w));
}

void KvmClock::clock_set() {
    std::lock_guard lock(m_mutex);
    m_ref.reset();
    m_generation.fetch_add(1, std::memory_order_acq_rel);
}

}  // namespace vireo::soft
