// Saving and restoring a whole machine (DESIGN.md §4). A snapshot holds one section per
// component, each encoded by that component's persist():
//
//   "memory"      the RAM layout (region starts and sizes): the memory file must match it
//   "platform"    the accelerator's PIC, IOAPIC, PIT and the guest clock at pause
//   "vcpu.N"      each vCPU, N = 0 .. cpus-1, in the accelerator-neutral form (vcpu_section.h)
//   and one section per component with state, named as registered (machine.cpp,
//   machine_pci.cpp): "serial", "i8042", "cmos", "virtio.N" (each virtio-pci function in slot
//   order: disks, NICs, console, entropy), "pci-root"; each with its own version
//   (ComponentRegistry)
//
// Restore builds the same hardware from the configuration (the snapshot's, with paths and taps
// possibly overridden), then puts every state back in dependency order: devices and the PCI root
// first (so BARs decode and MSI routes exist), the interrupt controllers, then the vCPUs (the
// LAPIC after the IOAPIC it receives from), and the guest clock last, after the TSCs.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "arch/x86_64/cpuid.h"
#include "arch/x86_64/memory_layout.h"
#include "base/state_archive.h"
#include "machine/machine.h"
#include "machine/vcpu_section.h"

namespace vireo {

namespace {

struct RegionLayout {
    std::uint64_t start = 0;
    std::uint64_t size = 0;
};

struct MemoryLayoutState {
    std::vector<RegionLayout> regions;
};

template <typename Ar>
void persist(Ar& ar, RegionLayout& r) {
    ar(r.start, r.size);
}

template <typename Ar>
void persist(Ar& ar, MemoryLayoutState& s) {
    ar.vec(s.regions, 64);
}

template <typename T>
Result<T> load_section(const SnapshotContents& snapshot, const std::string& name) {
    const SnapshotSection* section = snapshot.find(name);
    if (section == nullptr) {
        return Error(fmt::format("the snapshot has no '{}' section", name));
    }
    // The RAM layout and the platform have one encoding so far.
    if (section->version != 1) {
        return Error(fmt::format("section '{}' has version {}; this vireo reads version 1", name,
                                 section->version));
    }
    auto state = load_from_bytes<T>(section->data);
    if (!state) {
        return state.error().wrap(fmt::format("section '{}'", name));
    }
    return state;
}

}  // namespace

Result<SnapshotContents> Machine::save_state() {
    std::uint64_t clock = 0;
    std::vector<std::uint64_t> tscs;
    {
        std::lock_guard lock(m_mutex);
        if (!m_paused) {
            return Error("the VM must be paused to save its state");
        }
        clock = m_paused_clock;
        tscs = m_paused_tscs;
    }
    SnapshotContents out;
    MemoryLayoutState layout;
    for (const auto& r : m_memory.regions()) {
        layout.regions.push_back({r.start.value, r.size});
    }
    out.add("memory", save_to_bytes(layout));
    auto platform = m_vm->save_platform_state();
    if (!platform) {
        return platform.error();
    }
    platform->clock_ns = clock;
    out.add("platform", save_to_bytes(std::move(platform).value()));
    for (std::size_t i = 0; i < m_vcpus.size(); ++i) {
        auto& v = m_vcpus[i];
        auto s = v->save_state();
        if (!s) {
            return s.error();
        }
        // The TSC as it was when the clock was read (Machine::pause).
        for (auto& msr : s->msrs) {
            if (msr.index == x86::kMsrTsc && i < tscs.size() && tscs[i] != 0) {
                msr.data = tscs[i];
            }
        }
        out.add(fmt::format("vcpu.{}", v->id()), save_to_bytes(std::move(s).value()),
                kVcpuSectionVersion);
    }
    if (auto r = m_components.save(out); !r) {
        return r.error();
    }
    return out;
}

Result<std::unique_ptr<Machine>> Machine::restore(Accelerator& accel, const MachineConfig& config,
                                                  Console& console, GuestMemory memory,
                                                  const SnapshotContents& snapshot,
                                                  bool keep_vm_id) {
    auto m = prepare_restore(accel, config, console, std::move(memory));
    if (!m) {
        return m.error();
    }
    if (auto r = (*m)->finish_restore(accel, config, snapshot, keep_vm_id); !r) {
        return r.error();
    }
    return m;
}

Result<std::unique_ptr<Machine>> Machine::prepare_restore(Accelerator& accel,
                                                          const MachineConfig& config,
                                                          Console& console, GuestMemory memory) {
    if (auto r = validate_machine_size(config); !r) {
        return r.error();
    }
    // The RAM must be what the configuration lays out (finish_restore() checks the snapshot).
    const auto expected = layout::ram_regions(config.memory);
    const auto regions = memory.regions();
    bool same = regions.size() == expected.size();
    for (std::size_t i = 0; same && i < expected.size(); ++i) {
        same = regions[i].start == expected[i].start && regions[i].size == expected[i].size;
    }
    if (!same) {
        return Error(fmt::format("guest RAM is not laid out for {} MiB", config.memory >> 20));
    }
    std::unique_ptr<Machine> m(new Machine(std::move(memory), console));
    if (auto r = m->build_platform(accel, config); !r) {
        return r.error();
    }
    // The vCPUs too (creating one is slow under nested virtualization): finish_restore() only
    // sets their state.
    for (std::uint32_t id = 0; id < config.cpus; ++id) {
        auto vcpu = m->m_vm->create_vcpu(id);
        if (!vcpu) {
            return vcpu.error();
        }
        m->m_vcpus.push_back(std::move(vcpu).value());
    }
    return m;
}

Result<void> Machine::finish_restore(Accelerator& accel, const MachineConfig& config,
                                     const SnapshotContents& snapshot, bool keep_vm_id) {
    auto saved = load_section<MemoryLayoutState>(snapshot, "memory");
    if (!saved) {
        return saved.error();
    }
    const auto expected = layout::ram_regions(config.memory);
    bool same = saved->regions.size() == expected.size();
    for (std::size_t i = 0; same && i < expected.size(); ++i) {
        same = saved->regions[i].start == expected[i].start.value &&
               saved->regions[i].size == expected[i].size;
    }
    if (!same) {
        return Error(
            fmt::format("the snapshot's RAM layout does not match its configuration ({} MiB)",
                        config.memory >> 20));
    }
    if (config.defer_disk_locks) {
        if (auto r = retake_disk_locks(); !r) {
            return r;
        }
    }
    return restore_state(accel, config, snapshot, keep_vm_id);
}

Result<void> Machine::restore_state(Accelerator& accel, const MachineConfig& config,
                                    const SnapshotContents& snapshot, bool keep_vm_id) {
    // Devices first: their state is independent of the CPUs. In registration order, which puts
    // the PCI root after its functions (it re-decodes every BAR they hold).
    const auto machine_owned = [](std::string_view name) {
        return name == "memory" || name == "platform" || name.starts_with("vcpu.");
    };
    if (auto r = m_components.restore(snapshot, machine_owned); !r) {
        return r;
    }

    auto supported = accel.supported_cpuid();
    if (!supported) {
        return supported.error();
    }
    auto platform = load_section<VmPlatformState>(snapshot, "platform");
    if (!platform) {
        return platform.error();
    }
    if (auto r = m_vm->restore_platform_state(*platform); !r) {
        return r;
    }
    for (std::uint32_t id = 0; id < config.cpus; ++id) {
        const std::string name = fmt::format("vcpu.{}", id);
        const SnapshotSection* section = snapshot.find(name);
        if (section == nullptr) {
            return Error(fmt::format("the snapshot has no '{}' section", name));
        }
        auto s = load_vcpu_section(*section);
        if (!s) {
            return s.error();
        }
        if (s->id != id) {
            return Error(fmt::format("section vcpu.{} holds vCPU {}", id, s->id));
        }
        // The guest may use every feature it was shown: this host must have them all.
        const auto here =
            x86::shape_cpuid(*supported, {id, config.cpus, s->tsc_khz, config.smt ? 2U : 1U});
        if (const auto missing = x86::missing_cpu_features(s->cpuid, here); !missing.empty()) {
            std::string list;
            for (std::size_t i = 0; i < missing.size() && i < 8; ++i) {
                list += (i == 0 ? "" : ", ") + missing[i];
            }
            return Error(
                fmt::format("this CPU lacks {} feature(s) the snapshot's guest was given: {}{}",
                            missing.size(), list, missing.size() > 8 ? ", ..." : ""));
        }
        if (id == 0) {
            m_guest_cpuid = s->cpuid;
            m_guest_tsc_khz = s->tsc_khz;
        }
        if (m_vcpus.size() <= id) {  // prepare_restore() made them
            auto vcpu = m_vm->create_vcpu(id);
            if (!vcpu) {
                return vcpu.error();
            }
            m_vcpus.push_back(std::move(vcpu).value());
        }
        if (auto r = m_vcpus[id]->restore_state(*s); !r) {
            return r;
        }
    }
    if (snapshot.find(fmt::format("vcpu.{}", config.cpus)) != nullptr) {
        return Error(
            fmt::format("the snapshot has more vCPUs than the configuration's {}", config.cpus));
    }
    // The guest clock goes on from where it was paused (after the TSCs, which kvmclock reads).
    if (auto r = m_vm->set_clock(platform->clock_ns); !r) {
        return r;
    }
    if (m_track_dirty) {
        // RAM now equals the loaded memory file: a Diff from here holds what changes after the
        // restore. (KVM's log starts empty; the VMM's bitmaps start all dirty, for a boot.)
        for (std::size_t i = 0; i < m_memory.regions().size(); ++i) {
            static_cast<void>(m_memory.take_dirty(i));
        }
    }
    // A restored guest is a copy: give it a new VM generation ID and tell it (ACPI GED, Notify
    // 0x80), so its kernel reseeds its RNG and clones do not share random streams. The interrupt
    // waits in the IOAPIC/LAPIC until the vCPUs run. A migrated guest is the same VM, not a
    // copy (the source is gone): it keeps its ID.
    if (!keep_vm_id) {
        if (auto r = regenerate_vm_id(); !r) {
            return r.error().wrap("VM generation ID");
        }
    }
    std::lock_guard lock(m_mutex);
    m_paused = true;
    m_pause_requested = true;
    m_paused_clock = platform->clock_ns;
    return ok();
}

Result<std::vector<std::vector<std::uint64_t>>> Machine::take_dirty_pages() {
    if (!m_track_dirty) {
        return Error("dirty page tracking is off (machine-config track_dirty_pages)");
    }
    auto dirty = collect_dirty_pages();
    if (!dirty) {
        return dirty;
    }
    // What a migration took since the last snapshot is dirty for this one too.
    std::lock_guard lock(m_dirty_mutex);
    for (std::size_t i = 0; i < m_dirty_carry.size() && i < dirty->size(); ++i) {
        for (std::size_t w = 0; w < m_dirty_carry[i].size() && w < (*dirty)[i].size(); ++w) {
            (*dirty)[i][w] |= m_dirty_carry[i][w];
        }
    }
    m_dirty_carry.clear();
    return dirty;
}

Result<void> Machine::set_migration_dirty_log(bool on) {
    if (on) {
        m_memory.enable_dirty_tracking();  // stays on once enabled: a word OR per device write
    }
    if (!m_track_dirty) {
        // With track_dirty_pages the slots log from the start and keep doing so.
        for (std::size_t i = 0; i < m_memory.regions().size(); ++i) {
            if (auto r = m_vm->set_dirty_logging(static_cast<std::uint32_t>(i), on); !r) {
                return r;
            }
        }
    }
    m_migration_log = on;
    return ok();
}

Result<std::vector<std::vector<std::uint64_t>>> Machine::take_migration_dirty_pages() {
    if (!m_migration_log) {
        return Error("the migration dirty log is off");
    }
    auto dirty = collect_dirty_pages();
    if (dirty && m_track_dirty) {
        // The next Diff snapshot must still see these pages: keep them for it.
        std::lock_guard lock(m_dirty_mutex);
        m_dirty_carry.resize(dirty->size());
        for (std::size_t i = 0; i < dirty->size(); ++i) {
            m_dirty_carry[i].resize((*dirty)[i].size());
            for (std::size_t w = 0; w < (*dirty)[i].size(); ++w) {
                m_dirty_carry[i][w] |= (*dirty)[i][w];
            }
        }
    }
    return dirty;
}

Result<std::vector<std::vector<std::uint64_t>>> Machine::collect_dirty_pages() {
    std::vector<std::vector<std::uint64_t>> out;
    const auto regions = m_memory.regions();
    for (std::size_t i = 0; i < regions.size(); ++i) {
        const std::uint64_t pages = regions[i].size / kPageSize;
        std::vector<std::uint64_t> bitmap((pages + 63) / 64);
        if (auto r = m_vm->get_dirty_log(static_cast<std::uint32_t>(i), bitmap); !r) {
            return r.error();
        }
        // What the VMM and the devices wrote (DMA into guest buffers, used rings).
        const auto vmm = m_memory.take_dirty(i);
        for (std::size_t w = 0; w < bitmap.size() && w < vmm.size(); ++w) {
            bitmap[w] |= vmm[w];
        }
        out.push_back(std::move(bitmap));
    }
    return out;
}

}  // namespace vireo
