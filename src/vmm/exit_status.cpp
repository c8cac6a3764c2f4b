#include "vmm/exit_status.h"

#include <fmt/format.h>

#include "machine/machine.h"

namespace vireo {

int exit_status(const MachineExit& exit) {
    switch (exit.kind) {
        case MachineExitKind::PowerOff:
        case MachineExitKind::Reset:
        case MachineExitKind::Stopped:
            return kExitOk;
        case MachineExitKind::Crash:
            fmt::print(stderr, "vireo: the guest crashed: {}\n", exit.message);
            return kExitGuestCrash;
        case MachineExitKind::Error:
            fmt::print(stderr, "vireo: {}\n", exit.message);
            return kExitError;
        case MachineExitKind::DebugExit:
            // As QEMU's isa-debug-exit: (V << 1) | 1, of which the OS keeps the low 8 bits.
            return static_cast<int>(exit.debug_status & 0xff);
    }
    return kExitError;
}

}  // namespace vireo
