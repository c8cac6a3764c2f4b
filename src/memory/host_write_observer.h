// Who must hear of the writes to guest RAM that the VMM makes from the host side: device DMA
// (a block read, a received frame, an entropy buffer), the used ring, the loader. vCPU stores are
// the accelerator's own business and never come here.
//
// On KVM nobody listens: x86 keeps instruction fetch coherent with every store, the host's
// included, and KVM's dirty log is for the guest's writes (GuestMemory tracks the VMM's own).
// The software CPU listens (accel/soft): it keeps decoded instructions per guest page and must
// drop a page's when the page's bytes change under it, as when the guest reads a program from
// disk into a page that held other code before.
#pragma once

#include <cstdint>

#include "memory/guest_address.h"

namespace vireo {

class HostWriteObserver {
public:
    // [gpa, gpa + len) of guest RAM has new bytes, already in place. Any thread; must not block.
    virtual void host_wrote(GuestAddress gpa, std::uint64_t len) = 0;

protected:
    ~HostWriteObserver() = default;
};

}  // namespace vireo
