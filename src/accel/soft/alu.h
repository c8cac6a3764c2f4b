// Integer ALU operations computed by the host CPU, which is itself x86-64: the operation runs
// on host registers and the arithmetic flags are read back with LAHF (SF ZF AF PF CF into AH, in
// their RFLAGS bit positions) and SETO (OF). This gives bit-exact results and flags, including
// the flags the SDM leaves undefined, at the cost of tying the interpreter to x86-64 hosts.
// No stack is touched (no PUSHF), so the compiler's red zone is safe.
#pragma once

#include <cstdint>

#include "accel/soft/cpu_state.h"

namespace vireo::soft::alu {

// Flags out of AH (from LAHF) and the SETO byte.
inline std::uint64_t flags_of(std::uint16_t ax, std::uint8_t of) {
    return ((ax >> 8) & (fl::CF | fl::PF | fl::AF | fl::ZF | fl::SF)) | (of ? fl::OF : 0);
}

// a = a OP b; returns the new arithmetic flags.
#define VIREO_ALU2(NAME, INSN)                       \
    template <typename T>                            \
    inline std::uint64_t NAME(T& a, T b) {           \
        std::uint16_t ax;                            \
        std::uint8_t of;                             \
        asm(INSN " %[b], %[a]\n\tlahf\n\tseto %[of]" \
            : [a] "+r"(a), "=&a"(ax), [of] "=&r"(of) \
            : [b] "r"(b)                             \
            : "cc");                                 \
        return flags_of(ax, of);                     \
    }
VIREO_ALU2(add, "add")
VIREO_ALU2(sub, "sub")
VIREO_ALU2(and_, "and")
VIREO_ALU2(or_, "or")
VIREO_ALU2(xor_, "xor")
#undef VIREO_ALU2

// a = a OP b with the guest's CF as carry/borrow in.
#define VIREO_ALU2C(NAME, INSN)                                         \
    template <typename T>                                               \
    inline std::uint64_t NAME(T& a, T b, std::uint64_t cf) {            \
        std::uint16_t ax;                                               \
        std::uint8_t of;                                                \
        std::uint32_t c = static_cast<std::uint32_t>(cf & 1);           \
        asm("bt $0, %k[c]\n\t" INSN " %[b], %[a]\n\tlahf\n\tseto %[of]" \
            : [a] "+r"(a), "=&a"(ax), [of] "=&r"(of)                    \
            : [b] "r"(b), [c] "r"(c)                                    \
            : "cc");                                                    \
        return flags_of(ax, of);                                        \
    }
VIREO_ALU2C(adc, "adc")
VIREO_ALU2C(sbb, "sbb")
#undef VIREO_ALU2C

#define VIREO_ALU1(NAME, INSN)                                                                     \
    template <typename T>                                                                          \
    inline std::uint64_t NAME(T& a) {                                                              \
        std::uint16_t ax;                                                                          \
        std::uint8_t of;                                                                           \
        asm(INSN " %[a]\n\tlahf\n\tseto %[of]" : [a] "+r"(a), "=&a"(ax), [of] "=&r"(of) : : "cc"); \
        return flags_of(ax, of);                                                                   \
    }
VIREO_ALU1(inc, "inc")
VIREO_ALU1(dec, "dec")
VIREO_ALU1(neg, "neg")
#undef VIREO_ALU1

// Shifts and rotates by CL; the caller handles a masked count of 0 (flags unchanged). RCL/RCR
// take the guest CF in.
#define VIREO_SHIFT(NAME, INSN)                                             \
    template <typename T>                                                   \
    inline std::uint64_t NAME(T& a, std::uint8_t count, std::uint64_t cf) { \
        std::uint16_t ax;                                                   \
        std::uint8_t of;                                                    \
        std::uint32_t c = static_cast<std::uint32_t>(cf & 1);               \
        asm("bt $0, %k[c]\n\t" INSN " %%cl, %[a]\n\tlahf\n\tseto %[of]"     \
            : [a] "+r"(a), "=&a"(ax), [of] "=&r"(of)                        \
            : "c"(count), [c] "r"(c)                                        \
            : "cc");                                                        \
        return flags_of(ax, of);                                            \
    }
VIREO_SHIFT(shl, "shl")
VIREO_SHIFT(shr, "shr")
VIREO_SHIFT(sar, "sar")
VIREO_SHIFT(rol, "rol")
VIREO_SHIFT(ror, "ror")
VIREO_SHIFT(rcl, "rcl")
VIREO_SHIFT(rcr, "rcr")
#undef VIREO_SHIFT

// SHLD/SHRD a, b, CL (16/32/64-bit only).
#define VIREO_DSHIFT(NAME, INSN)                               \
    template <typename T>                                      \
    inline std::uint64_t NAME(T& a, T b, std::uint8_t count) { \
        std::uint16_t ax;                                      \
        std::uint8_t of;                                       \
        asm(INSN " %%cl, %[b], %[a]\n\tlahf\n\tseto %[of]"     \
            : [a] "+r"(a), "=&a"(ax), [of] "=&r"(of)           \
            : [b] "r"(b), "c"(count)                           \
            : "cc");                                           \
        return flags_of(ax, of);                               \
    }
VIREO_DSHIFT(shld, "shld")
VIREO_DSHIFT(shrd, "shrd")
#undef VIREO_DSHIFT

// Two-operand IMUL (16/32/64-bit): CF=OF on truncation, SF/ZF/AF/PF undefined.
template <typename T>
inline std::uint64_t imul2(T& a, T b) {
    std::uint16_t ax;
    std::uint8_t of;
    asm("imul %[b], %[a]\n\tlahf\n\tseto %[of]"
        : [a] "+r"(a), "=&a"(ax), [of] "=&r"(of)
        : [b] "r"(b)
        : "cc");
    return flags_of(ax, of);
}

// BSF/BSR: ZF set and destination unchanged when the source is 0 (AMD and Intel both leave it).
#define VIREO_BITSCAN(NAME, INSN)                    \
    template <typename T>                            \
    inline std::uint64_t NAME(T& a, T b) {           \
        std::uint16_t ax;                            \
        std::uint8_t of;                             \
        asm(INSN " %[b], %[a]\n\tlahf\n\tseto %[of]" \
            : [a] "+r"(a), "=&a"(ax), [of] "=&r"(of) \
            : [b] "r"(b)                             \
            : "cc");                                 \
        return flags_of(ax, of);                     \
    }
VIREO_BITSCAN(bsf, "bsf")
VIREO_BITSCAN(bsr, "bsr")
#undef VIREO_BITSCAN

// Merges `flags` (host-computed) into the guest RFLAGS for the bits in `mask`.
inline void merge(std::uint64_t& rflags, std::uint64_t flags, std::uint64_t mask) {
    rflags = (rflags & ~mask) | (flags & mask);
}

}  // namespace vireo::soft::alu
