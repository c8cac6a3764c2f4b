// Architectural exceptions raised while executing a guest instruction (SDM Vol. 3 §6.3.1,
// Table 6-1). They unwind to the interpreter's run loop, which delivers them through the IDT;
// they never leave Vcpu::run(). The instruction that faulted has committed nothing: handlers
// perform every access that can fault before they write registers back.
#pragma once

#include <cstdint>

namespace vireo::soft {

enum Vector : std::uint8_t {
    kDe = 0,
    kDb = 1,
    kNmi = 2,
    kBp = 3,
    kOf = 4,
    kBr = 5,
    kUd = 6,
    kNm = 7,
    kDf = 8,
    kTs = 10,
    kNp = 11,
    kSsFault = 12,
    kGp = 13,
    kPf = 14,
    kMf = 16,
    kAc = 17,
    kMc = 18,
    kXm = 19,
};

struct GuestFault {
    std::uint8_t vector;
    bool has_error;
    std::uint32_t error;
};

[[noreturn]] inline void raise(std::uint8_t vector) {
    throw GuestFault{vector, false, 0};
}
[[noreturn]] inline void raise(std::uint8_t vector, std::uint32_t error) {
    throw GuestFault{vector, true, error};
}

}  // namespace vireo::soft
