// Conversions between vireo's register structs and KVM's (the only place that knows both).
#pragma once

#include "accel/kvm/kvm_uapi.h"

#include "accel/regs.h"

namespace vireo::kvm {

kvm_regs to_kvm(const Regs& r);
Regs from_kvm(const kvm_regs& r);
// KVM's kvm_sregs also carries the pending-interrupt bitmap; `base` supplies it unchanged.
kvm_sregs to_kvm(const Sregs& s, const kvm_sregs& base);
Sregs from_kvm(const kvm_sregs& s);

}  // namespace vireo::kvm
