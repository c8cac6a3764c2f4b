// Section "vcpu.N" of a snapshot in every version this vireo reads:
//   1  KVM's uapi structs as bytes (vireo before the neutral accelerator seam); read through
//      accel/kvm's conversion, whichever accelerator restores it
//   2  the neutral VcpuState (accel/accel_state.h), what this vireo writes
#pragma once

#include "accel/accel_state.h"
#include "base/result.h"
#include "snapshot/snapshot_file.h"

namespace vireo {

Result<VcpuState> load_vcpu_section(const SnapshotSection& section);

}  // namespace vireo
