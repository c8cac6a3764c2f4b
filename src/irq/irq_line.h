// An interrupt line into the guest's interrupt controllers (DESIGN.md §2). Devices hold an
// IrqLine& and never know which accelerator or GSI is behind it.
#pragma once

namespace vireo {

class IrqLine {
public:
    virtual ~IrqLine() = default;
    // Level-triggered semantics: the line stays asserted while `high`. Callable from any thread.
    virtual void set_level(bool high) = 0;
};

}  // namespace vireo
