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
    }
    return kExitError;
}

}  // namespace vireo
