// What a stopped vCPU was doing, in one line for the exit summary (`run --verbose`, the API
// server's log when the VM ends): the run state, interrupt flag and shadow, any event in flight,
// the LAPIC's timer and highest requested and in-service vectors, and the TSC beside the
// TSC-deadline. A guest that hangs without exits (issue 14's destination that never ran after a
// hand-over) is told apart by these: halted with no timer armed, an interrupt held in the IRR
// behind the TPR, an event injected but never delivered.
#pragma once

#include <string>

#include "accel/accel_state.h"

namespace vireo {

std::string vcpu_state_report(const VcpuState& s);

}  // namespace vireo
