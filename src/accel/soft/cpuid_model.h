// The CPUID the soft CPU presents: qemu64-like (QEMU's default x86-64 model), i.e. the baseline
// every x86-64 kernel accepts: no XSAVE/AVX/PCID/SMEP/SMAP/x2APIC/FSGSBASE/PKU/LA57, no 1 GiB
// pages; MTRR and cache-descriptor leaves present.
#pragma once

#include <vector>

#include "accel/regs.h"

namespace vireo::soft {

std::vector<CpuidEntry> cpuid_model();

}  // namespace vireo::soft
