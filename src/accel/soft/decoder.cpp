#include "accel/soft/decoder.h"

#include <utility>

namespace vireo::soft {

int jcc_condition(ZydisMnemonic m);

namespace {

constexpr ZydisMachineMode kZydisMode[] = {
    ZYDIS_MACHINE_MODE_REAL_16,        ZYDIS_MACHINE_MODE_LEGACY_16,
    ZYDIS_MACHINE_MODE_LEGACY_32,      ZYDIS_MACHINE_MODE_LONG_COMPAT_16,
    ZYDIS_MACHINE_MODE_LONG_COMPAT_32, ZYDIS_MACHINE_MODE_LONG_64,
};
constexpr ZydisStackWidth kZydisStack[] = {
    ZYDIS_STACK_WIDTH_16, ZYDIS_STACK_WIDTH_16, ZYDIS_STACK_WIDTH_32,
    ZYDIS_STACK_WIDTH_16, ZYDIS_STACK_WIDTH_32, ZYDIS_STACK_WIDTH_64,
};

// A GPR of any width as its hardware number (0-15), with AH..BH flagged.
bool gpr_number(ZydisRegister r, std::uint8_t& num, bool& hi8) {
    hi8 = false;
    if (r >= ZYDIS_REGISTER_AL && r <= ZYDIS_REGISTER_BL) {
        num = static_cast<std::uint8_t>(r - ZYDIS_REGISTER_AL);
    } else if (r >= ZYDIS_REGISTER_AH && r <= ZYDIS_REGISTER_BH) {
        num = static_cast<std::uint8_t>(r - ZYDIS_REGISTER_AH);
        hi8 = true;
    } else if (r >= ZYDIS_REGISTER_SPL && r <= ZYDIS_REGISTER_DIL) {
        num = static_cast<std::uint8_t>(4 + (r - ZYDIS_REGISTER_SPL));
    } else if (r >= ZYDIS_REGISTER_R8B && r <= ZYDIS_REGISTER_R15B) {
        num = static_cast<std::uint8_t>(8 + (r - ZYDIS_REGISTER_R8B));
    } else if (r >= ZYDIS_REGISTER_AX && r <= ZYDIS_REGISTER_R15W) {
        num = static_cast<std::uint8_t>(r - ZYDIS_REGISTER_AX);
    } else if (r >= ZYDIS_REGISTER_EAX && r <= ZYDIS_REGISTER_R15D) {
        num = static_cast<std::uint8_t>(r - ZYDIS_REGISTER_EAX);
    } else if (r >= ZYDIS_REGISTER_RAX && r <= ZYDIS_REGISTER_R15) {
        num = static_cast<std::uint8_t>(r - ZYDIS_REGISTER_RAX);
    } else {
        return false;
    }
    return true;
}

std::uint8_t seg_number(ZydisRegister r) {
    return r >= ZYDIS_REGISTER_ES && r <= ZYDIS_REGISTER_GS
               ? static_cast<std::uint8_t>(r - ZYDIS_REGISTER_ES)
               : static_cast<std::uint8_t>(kDs);
}

Operand convert(const ZydisDecodedOperand& z) {
    Operand o;
    o.size = static_cast<std::uint8_t>(z.size / 8);
    switch (z.type) {
        case ZYDIS_OPERAND_TYPE_REGISTER: {
            const ZydisRegister r = z.reg.value;
            if (gpr_number(r, o.reg, o.hi8)) {
                o.kind = OpKind::Gpr;
            } else if (r >= ZYDIS_REGISTER_ES && r <= ZYDIS_REGISTER_GS) {
                o.kind = OpKind::Seg;
                o.reg = seg_number(r);
            } else if (r >= ZYDIS_REGISTER_CR0 && r <= ZYDIS_REGISTER_CR15) {
                o.kind = OpKind::Cr;
                o.reg = static_cast<std::uint8_t>(r - ZYDIS_REGISTER_CR0);
            } else if (r >= ZYDIS_REGISTER_DR0 && r <= ZYDIS_REGISTER_DR15) {
                o.kind = OpKind::Dr;
                o.reg = static_cast<std::uint8_t>(r - ZYDIS_REGISTER_DR0);
            } else if (r >= ZYDIS_REGISTER_XMM0 && r <= ZYDIS_REGISTER_XMM15) {
                o.kind = OpKind::Xmm;
                o.reg = static_cast<std::uint8_t>(r - ZYDIS_REGISTER_XMM0);
            } else if (r >= ZYDIS_REGISTER_ST0 && r <= ZYDIS_REGISTER_ST7) {
                o.kind = OpKind::St;
                o.reg = static_cast<std::uint8_t>(r - ZYDIS_REGISTER_ST0);
            } else {
                o.kind = OpKind::Unsupported;  // MMX, YMM/ZMM, mask registers
            }
            break;
        }
        case ZYDIS_OPERAND_TYPE_MEMORY: {
            o.kind = OpKind::Mem;
            o.agen = z.mem.type == ZYDIS_MEMOP_TYPE_AGEN;
            if (z.mem.type == ZYDIS_MEMOP_TYPE_VSIB || z.mem.type == ZYDIS_MEMOP_TYPE_MIB) {
                o.kind = OpKind::Unsupported;
                break;
            }
            bool hi = false;
            if (z.mem.base == ZYDIS_REGISTER_RIP || z.mem.base == ZYDIS_REGISTER_EIP) {
                o.base = kRipBase;
            } else if (z.mem.base != ZYDIS_REGISTER_NONE && !gpr_number(z.mem.base, o.base, hi)) {
                o.kind = OpKind::Unsupported;
            }
            if (z.mem.index != ZYDIS_REGISTER_NONE && !gpr_number(z.mem.index, o.index, hi)) {
                o.kind = OpKind::Unsupported;
            }
            o.scale = z.mem.scale;
            o.disp = z.mem.disp.has_displacement ? z.mem.disp.value : 0;
            o.seg = seg_number(z.mem.segment);
            break;
        }
        case ZYDIS_OPERAND_TYPE_IMMEDIATE:
            o.kind = OpKind::Imm;
            o.imm = z.imm.value.u;
            break;
        case ZYDIS_OPERAND_TYPE_POINTER:
            o.kind = OpKind::Ptr;
            o.imm = z.ptr.offset;
            o.disp = z.ptr.segment;
            break;
        default:
            o.kind = OpKind::Unsupported;
            break;
    }
    return o;
}

}  // namespace

Decoder::Decoder() {
    for (int i = 0; i < 6; ++i) {
        ZydisDecoderInit(&m_dec[i], kZydisMode[i], kZydisStack[i]);
    }
}

DecodeStatus Decoder::decode(CpuMode mode, const std::uint8_t* bytes, std::size_t len,
                             Insn& out) const {
    ZydisDecodedInstruction zi;
    ZydisDecodedOperand zo[ZYDIS_MAX_OPERAND_COUNT];
    const ZyanStatus st =
        ZydisDecoderDecodeFull(&m_dec[static_cast<int>(mode)], bytes, len, &zi, zo);
    if (st == ZYDIS_STATUS_NO_MORE_DATA) {
        return len < ZYDIS_MAX_INSTRUCTION_LENGTH ? DecodeStatus::NeedMoreBytes
                                                  : DecodeStatus::Invalid;
    }
    if (!ZYAN_SUCCESS(st)) {
        return DecodeStatus::Invalid;
    }
    out = Insn{};
    out.mnemonic = zi.mnemonic;
    out.length = zi.length;
    out.opsize = static_cast<std::uint8_t>(zi.operand_width / 8);
    out.addrsize = static_cast<std::uint8_t>(zi.address_width / 8);
    out.lock = (zi.attributes & ZYDIS_ATTRIB_HAS_LOCK) != 0;
    out.rep = (zi.attributes & (ZYDIS_ATTRIB_HAS_REP | ZYDIS_ATTRIB_HAS_REPE)) != 0;
    out.repne = (zi.attributes & ZYDIS_ATTRIB_HAS_REPNE) != 0;
    out.mode = mode;
    out.far = zi.meta.branch_type == ZYDIS_BRANCH_TYPE_FAR;
    out.map0 = zi.opcode_map == ZYDIS_OPCODE_MAP_DEFAULT;
    static constexpr std::pair<ZydisInstructionAttributes, SegReg> kSegPrefix[] = {
        {ZYDIS_ATTRIB_HAS_SEGMENT_ES, kEs}, {ZYDIS_ATTRIB_HAS_SEGMENT_CS, kCs},
        {ZYDIS_ATTRIB_HAS_SEGMENT_SS, kSs}, {ZYDIS_ATTRIB_HAS_SEGMENT_DS, kDs},
        {ZYDIS_ATTRIB_HAS_SEGMENT_FS, kFs}, {ZYDIS_ATTRIB_HAS_SEGMENT_GS, kGs},
    };
    for (const auto& [attr, seg] : kSegPrefix) {
        if ((zi.attributes & attr) != 0) {
            out.seg_override = seg;
        }
    }
    out.undefined_flags = zi.cpu_flags ? zi.cpu_flags->undefined : 0;
    out.cc = static_cast<std::int8_t>(jcc_condition(zi.mnemonic));
    out.nops = zi.operand_count_visible > 3 ? 3 : zi.operand_count_visible;
    for (std::uint8_t i = 0; i < out.nops; ++i) {
        out.op[i] = convert(zo[i]);
        if (zo[i].type == ZYDIS_OPERAND_TYPE_IMMEDIATE && zo[i].imm.is_relative) {
            out.rel_branch = true;
        }
    }
    return DecodeStatus::Ok;
}

}  // namespace vireo::soft
