#include "accel/vcpu_exit.h"

namespace vireo {

std::string_view to_string(VcpuExitKind kind) {
    switch (kind) {
        case VcpuExitKind::Halt:
            return "halt";
        case VcpuExitKind::Shutdown:
            return "shutdown";
        case VcpuExitKind::Reset:
            return "reset";
        case VcpuExitKind::PowerOff:
            return "power-off";
        case VcpuExitKind::Interrupted:
            return "interrupted";
        case VcpuExitKind::InternalError:
            return "internal-error";
    }
    return "unknown";
}

std::string_view to_string(ExitReason reason) {
    switch (reason) {
        case ExitReason::PioRead:
            return "pio-read";
        case ExitReason::PioWrite:
            return "pio-write";
        case ExitReason::MmioRead:
            return "mmio-read";
        case ExitReason::MmioWrite:
            return "mmio-write";
        case ExitReason::Halt:
            return "halt";
        case ExitReason::Shutdown:
            return "shutdown";
        case ExitReason::SystemEvent:
            return "system-event";
        case ExitReason::Interrupted:
            return "interrupted";
        case ExitReason::InternalError:
            return "internal-error";
        case ExitReason::Other:
            return "other";
        case ExitReason::Count_:
            break;
    }
    return "unknown";
}

std::uint64_t ExitStats::total() const {
    std::uint64_t sum = 0;
    for (std::size_t i = 0; i < counts.size(); ++i) {
        sum += (*this)[static_cast<ExitReason>(i)];
    }
    return sum;
}

}  // namespace vireo
