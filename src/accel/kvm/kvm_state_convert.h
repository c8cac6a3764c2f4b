// The neutral VcpuState (accel/accel_state.h) to and from KVM's uapi structs, and section
// "vcpu.N" version 1 (before issue 12's neutral seam: KVM's structs as bytes) read into the
// neutral form. Pure conversions: no /dev/kvm needed, so unit tests cover them everywhere.
#pragma once

#include <cstdint>
#include <span>

#include "accel/accel_state.h"
#include "accel/kvm/kvm_uapi.h"
#include "base/result.h"

namespace vireo::kvm {

// Everything KVM holds for a vCPU beside its MSRs and CPUID, one struct per KVM_GET_* call.
struct KvmVcpuState {
    kvm_mp_state mp{};
    kvm_regs regs{};
    kvm_sregs sregs{};
    bool has_xsave = false;  // `xsave` holds the FPU state; otherwise `fpu` does
    kvm_xsave xsave{};
    kvm_fpu fpu{};
    bool has_xcrs = false;
    kvm_xcrs xcrs{};
    bool has_debugregs = false;
    kvm_debugregs debugregs{};
    bool has_lapic = false;
    kvm_lapic_state lapic{};
    bool has_events = false;
    kvm_vcpu_events events{};
};

// The neutral form of `k` (id, tsc_khz, cpuid and msrs are left for the caller).
VcpuState to_neutral(const KvmVcpuState& k);

// What KVM needs for `s`; `host_xsave` says whether this KVM has KVM_CAP_XSAVE (if not, the
// x87/SSE part goes through KVM_SET_FPU). Fails where KVM cannot represent the state: an XSAVE
// area larger than KVM_SET_XSAVE takes with values beyond it, or an exception payload (vireo does
// not enable KVM_CAP_EXCEPTION_PAYLOAD).
Result<KvmVcpuState> from_neutral(const VcpuState& s, bool host_xsave);

// Section "vcpu.N" version 1 as the neutral form; every blob must have its KVM struct's size.
Result<VcpuState> load_vcpu_section_v1(std::span<const std::uint8_t> bytes);

}  // namespace vireo::kvm
