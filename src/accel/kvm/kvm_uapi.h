// The one include of <linux/kvm.h> for vireo (DESIGN.md §2: accel/kvm/ only).
//
// Debian 12's uapi headers (linux-libc-dev 6.1) declare flexible array members with
// __DECLARE_FLEX_ARRAY, which wraps the array in a struct beside an empty struct. In C an empty
// struct has size 0; in C++ it has size 1, which moves `entries` of kvm_cpuid2/kvm_msrs from
// offset 8 to 12 and changes the ioctl numbers that encode sizeof (KVM_GET_SUPPORTED_CPUID became
// 0xc00cae05 instead of 0xc008ae05 and the kernel answered EINVAL). Linux 6.5 fixed the header
// with a C++ branch; we apply the same definition here and pin the layouts below.
#pragma once

#include <linux/stddef.h>
#undef __DECLARE_FLEX_ARRAY
#define __DECLARE_FLEX_ARRAY(TYPE, NAME) TYPE NAME[0]

#include <linux/kvm.h>

#include <cstddef>

static_assert(sizeof(kvm_cpuid2) == 8 && offsetof(kvm_cpuid2, entries) == 8);
static_assert(sizeof(kvm_msrs) == 8 && offsetof(kvm_msrs, entries) == 8);
static_assert(sizeof(kvm_msr_list) == 4 && offsetof(kvm_msr_list, indices) == 4);
static_assert(sizeof(kvm_irq_routing) == 8 && offsetof(kvm_irq_routing, entries) == 8);
static_assert(sizeof(kvm_signal_mask) == 4);
static_assert(sizeof(kvm_cpuid_entry2) == 40);
