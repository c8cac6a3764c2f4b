// One decoded instruction in the interpreter's own compact form, converted once from Zydis's
// full decode and kept in the decode cache. Only the visible operands are kept; implicit ones
// (the stack, RAX/RDX of MUL, RSI/RDI of string instructions) follow from the mnemonic.
#pragma once

#include <cstdint>

#include <Zydis/Zydis.h>

#include "accel/soft/cpu_state.h"

namespace vireo::soft {

enum class OpKind : std::uint8_t { None, Gpr, Seg, Cr, Dr, Xmm, St, Mem, Imm, Ptr, Unsupported };

inline constexpr std::uint8_t kNoReg = 0xff;
inline constexpr std::uint8_t kRipBase = 16;  // RIP-relative addressing

struct Operand {
    OpKind kind = OpKind::None;
    std::uint8_t size = 0;  // bytes
    std::uint8_t reg = 0;   // Gpr/Seg/Cr/Dr number; for Gpr with hi8, AH..BH as 4..7 -> 0..3
    bool hi8 = false;       // AH, CH, DH, BH
    std::uint8_t base = kNoReg, index = kNoReg, scale = 0;
    std::uint8_t seg = kDs;  // effective segment of a memory operand
    bool agen = false;       // LEA: address only, no access
    std::int64_t disp = 0;   // memory displacement
    std::uint64_t imm = 0;   // immediate (sign-extended to the operand size as Zydis gives it);
                             // for Ptr: offset; far segment in `disp`
};

struct Insn {
    ZydisMnemonic mnemonic = ZYDIS_MNEMONIC_INVALID;
    std::uint8_t length = 0;
    std::uint8_t opsize = 0;    // effective operand size in bytes
    std::uint8_t addrsize = 0;  // effective address size in bytes
    std::uint8_t nops = 0;
    bool lock = false, rep = false, repne = false;
    bool rel_branch = false;  // operand 0 is a relative branch displacement
    bool far = false;         // far JMP/CALL/RET (a new CS)
    bool map0 = false;
    std::uint8_t seg_override =
        kSegCount;  // an explicit segment prefix, else kSegCount           // one-byte opcode map
                    // (tells string MOVSD from SSE MOVSD)
    CpuMode mode = CpuMode::Long64;     // the mode it was decoded in
    std::uint32_t undefined_flags = 0;  // RFLAGS bits the SDM leaves undefined after it
    std::int8_t cc = -1;                // condition code (0-15) of Jcc/CMOVcc/SETcc, else -1
    // Which exec_* group handled it last time (0 = not known yet): the dispatcher goes there
    // directly instead of trying the groups in turn.
    mutable std::uint8_t group = 0;
    Operand op[3];
};

}  // namespace vireo::soft
