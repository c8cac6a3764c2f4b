// vireo-kvm-keeper: holds one empty KVM VM open for as long as the outer test host runs (started
// by tests/nested/host-init before the scenario). Issue 13's wedges were the outer kernel's four
// vCPUs looping through asm_exc_int3 at __schedule+0x2ab with interrupts off
// (tests/nested/wedge-capture, tests/nested/symbolize): the int3 that text_poke_bp() plants while
// it patches a static branch. KVM flips such branches as VMs come and go (kvm_create_vm() and
// kvm_destroy_vm() take and drop preempt_notifier_inc(), whose key guards the preempt notifier
// calls inlined into __schedule), and QEMU's multi-threaded TCG, emulating that cross-modifying
// code on every outer vCPU at once, was seen to leave vCPUs looping on the breakpoint. With one
// VM always open the key's count never falls back to zero: the first VM patches __schedule once,
// and later VMs only move the count. No scenario sees this VM; it has no vCPU and no memory.
#include <fcntl.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cstdio>

int main() {
    const int kvm = ::open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (kvm < 0) {
        std::perror("vireo-kvm-keeper: /dev/kvm");
        return 1;
    }
    const int vm = ::ioctl(kvm, KVM_CREATE_VM, 0UL);
    if (vm < 0) {
        std::perror("vireo-kvm-keeper: KVM_CREATE_VM");
        return 1;
    }
    for (;;) {
        ::pause();
    }
}
