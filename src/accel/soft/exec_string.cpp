// String instructions and port I/O (SDM Vol. 2: MOVS, STOS, LODS, CMPS, SCAS, INS, OUTS with
// REP/REPE/REPNE; IN, OUT). A REP instruction runs in chunks: when the chunk ends or an exit is
// requested with iterations left, RIP stays on the instruction and it resumes from the updated
// RCX/RSI/RDI, as after an interrupt between iterations (SDM Vol. 1 §7.3.9.1).
#include "accel/soft/alu.h"
#include "accel/soft/interpreter_inline.h"

namespace vireo::soft {

namespace {

constexpr std::uint64_t kChunk = 65536;

unsigned element_size(ZydisMnemonic m) {
    switch (m) {
        case ZYDIS_MNEMONIC_MOVSB:
        case ZYDIS_MNEMONIC_STOSB:
        case ZYDIS_MNEMONIC_LODSB:
        case ZYDIS_MNEMONIC_CMPSB:
        case ZYDIS_MNEMONIC_SCASB:
        case ZYDIS_MNEMONIC_INSB:
        case ZYDIS_MNEMONIC_OUTSB:
            return 1;
        case ZYDIS_MNEMONIC_MOVSW:
        case ZYDIS_MNEMONIC_STOSW:
        case ZYDIS_MNEMONIC_LODSW:
        case ZYDIS_MNEMONIC_CMPSW:
        case ZYDIS_MNEMONIC_SCASW:
        case ZYDIS_MNEMONIC_INSW:
        case ZYDIS_MNEMONIC_OUTSW:
            return 2;
        case ZYDIS_MNEMONIC_MOVSD:
        case ZYDIS_MNEMONIC_STOSD:
        case ZYDIS_MNEMONIC_LODSD:
        case ZYDIS_MNEMONIC_CMPSD:
        case ZYDIS_MNEMONIC_SCASD:
        case ZYDIS_MNEMONIC_INSD:
        case ZYDIS_MNEMONIC_OUTSD:
            return 4;
        case ZYDIS_MNEMONIC_MOVSQ:
        case ZYDIS_MNEMONIC_STOSQ:
        case ZYDIS_MNEMONIC_LODSQ:
        case ZYDIS_MNEMONIC_CMPSQ:
        case ZYDIS_MNEMONIC_SCASQ:
            return 8;
        default:
            return 0;
    }
}

std::uint64_t sub_flags(std::uint64_t a, std::uint64_t b, unsigned size) {
    switch (size) {
        case 1: {
            auto x = static_cast<std::uint8_t>(a);
            return alu::sub(x, static_cast<std::uint8_t>(b));
        }
        case 2: {
            auto x = static_cast<std::uint16_t>(a);
            return alu::sub(x, static_cast<std::uint16_t>(b));
        }
        case 4: {
            auto x = static_cast<std::uint32_t>(a);
            return alu::sub(x, static_cast<std::uint32_t>(b));
        }
        default: {
            auto x = a;
            return alu::sub(x, b);
        }
    }
}

}  // namespace

// Port I/O is allowed at CPL <= IOPL (and always in real mode); there is no TSS I/O permission
// bitmap yet, so anything else is #GP(0) (SDM Vol. 1 §19.5).
static void check_io(const Interpreter& c) {
    if (c.mode() != CpuMode::Real16 && c.m_cpu.cpl > ((c.m_cpu.rflags & fl::IOPL) >> 12)) {
        raise(kGp, 0);
    }
}

bool Interpreter::exec_string(const Insn& in) {
    if (in.mnemonic == ZYDIS_MNEMONIC_IN || in.mnemonic == ZYDIS_MNEMONIC_OUT) {
        check_io(*this);
        const bool is_in = in.mnemonic == ZYDIS_MNEMONIC_IN;
        const Operand& data = is_in ? in.op[0] : in.op[1];
        const Operand& port_op = is_in ? in.op[1] : in.op[0];
        const auto port = static_cast<std::uint16_t>(
            port_op.kind == OpKind::Imm ? port_op.imm & 0xff : get_gpr(kRdx, 2));
        std::uint8_t buf[4] = {};
        const unsigned size = data.size;
        if (is_in) {
            m_io.pio_read(port, std::span(buf, size));
            std::uint32_t v = 0;
            std::memcpy(&v, buf, size);
            set_gpr(kRax, size, v);
        } else {
            const auto v = static_cast<std::uint32_t>(get_gpr(kRax, size));
            std::memcpy(buf, &v, size);
            m_io.pio_write(port, std::span<const std::uint8_t>(buf, size));
        }
        m_cpu.rip = next_rip(in);
        return true;
    }
    const unsigned size = element_size(in.mnemonic);
    if (size == 0 || !in.map0) {
        return false;  // also SSE MOVSD/CMPSD, which share the mnemonics
    }
    const ZydisMnemonic m = in.mnemonic;
    const bool is_io = m == ZYDIS_MNEMONIC_INSB || m == ZYDIS_MNEMONIC_INSW ||
                       m == ZYDIS_MNEMONIC_INSD || m == ZYDIS_MNEMONIC_OUTSB ||
                       m == ZYDIS_MNEMONIC_OUTSW || m == ZYDIS_MNEMONIC_OUTSD;
    if (is_io) {
        check_io(*this);
    }
    const std::uint64_t amask = in.addrsize == 8   ? ~0ULL
                                : in.addrsize == 4 ? 0xffffffffULL
                                                   : 0xffffULL;
    const unsigned src_seg = in.seg_override != kSegCount ? in.seg_override : unsigned{kDs};
    const std::int64_t step = (m_cpu.rflags & fl::DF) ? -static_cast<std::int64_t>(size)
                                                      : static_cast<std::int64_t>(size);
    const bool rep = in.rep || in.repne;
    const bool compares = m == ZYDIS_MNEMONIC_CMPSB || m == ZYDIS_MNEMONIC_CMPSW ||
                          m == ZYDIS_MNEMONIC_CMPSD || m == ZYDIS_MNEMONIC_CMPSQ ||
                          m == ZYDIS_MNEMONIC_SCASB || m == ZYDIS_MNEMONIC_SCASW ||
                          m == ZYDIS_MNEMONIC_SCASD || m == ZYDIS_MNEMONIC_SCASQ;
    auto advance = [&](unsigned r) {
        gpr(r) = (gpr(r) & ~amask) | ((gpr(r) + static_cast<std::uint64_t>(step)) & amask);
    };
    for (std::uint64_t n = 0;; ++n) {
        if (rep) {
            if ((gpr(kRcx) & amask) == 0) {
                break;
            }
            if (n == kChunk) {
                return true;  // resume later: RIP still on this instruction
            }
            if (n % 256 == 255 && m_exit && m_exit->load(std::memory_order_relaxed)) {
                m_stop = StopReason::Interrupted;  // end the batch now, resume on the next run
                return true;
            }
        }
        const std::uint64_t si = gpr(kRsi) & amask, di = gpr(kRdi) & amask;
        switch (m) {
            case ZYDIS_MNEMONIC_MOVSB:
            case ZYDIS_MNEMONIC_MOVSW:
            case ZYDIS_MNEMONIC_MOVSD:
            case ZYDIS_MNEMONIC_MOVSQ:
                mem_write(kEs, di, size, mem_read(src_seg, si, size));
                advance(kRsi);
                advance(kRdi);
                break;
            case ZYDIS_MNEMONIC_STOSB:
            case ZYDIS_MNEMONIC_STOSW:
            case ZYDIS_MNEMONIC_STOSD:
            case ZYDIS_MNEMONIC_STOSQ:
                mem_write(kEs, di, size, get_gpr(kRax, size));
                advance(kRdi);
                break;
            case ZYDIS_MNEMONIC_LODSB:
            case ZYDIS_MNEMONIC_LODSW:
            case ZYDIS_MNEMONIC_LODSD:
            case ZYDIS_MNEMONIC_LODSQ:
                set_gpr(kRax, size, mem_read(src_seg, si, size));
                advance(kRsi);
                break;
            case ZYDIS_MNEMONIC_CMPSB:
            case ZYDIS_MNEMONIC_CMPSW:
            case ZYDIS_MNEMONIC_CMPSD:
            case ZYDIS_MNEMONIC_CMPSQ: {
                const std::uint64_t a = mem_read(src_seg, si, size);
                const std::uint64_t b = mem_read(kEs, di, size);
                alu::merge(m_cpu.rflags, sub_flags(a, b, size), fl::kArith);
                advance(kRsi);
                advance(kRdi);
                break;
            }
            case ZYDIS_MNEMONIC_SCASB:
            case ZYDIS_MNEMONIC_SCASW:
            case ZYDIS_MNEMONIC_SCASD:
            case ZYDIS_MNEMONIC_SCASQ: {
                const std::uint64_t b = mem_read(kEs, di, size);
                alu::merge(m_cpu.rflags, sub_flags(get_gpr(kRax, size), b, size), fl::kArith);
                advance(kRdi);
                break;
            }
            case ZYDIS_MNEMONIC_INSB:
            case ZYDIS_MNEMONIC_INSW:
            case ZYDIS_MNEMONIC_INSD: {
                // Probe the destination first so a #PF does not lose the port read.
                m_mmu.translate(linear(kEs, di), Access::Write, user());
                std::uint8_t buf[4] = {};
                m_io.pio_read(static_cast<std::uint16_t>(gpr(kRdx)), std::span(buf, size));
                std::uint32_t v = 0;
                std::memcpy(&v, buf, size);
                mem_write(kEs, di, size, v);
                advance(kRdi);
                break;
            }
            default: {  // OUTS
                const auto v = static_cast<std::uint32_t>(mem_read(src_seg, si, size));
                std::uint8_t buf[4];
                std::memcpy(buf, &v, 4);
                m_io.pio_write(static_cast<std::uint16_t>(gpr(kRdx)),
                               std::span<const std::uint8_t>(buf, size));
                advance(kRsi);
                break;
            }
        }
        if (!rep) {
            break;
        }
        gpr(kRcx) = (gpr(kRcx) & ~amask) | ((gpr(kRcx) - 1) & amask);
        if (compares) {
            const bool zf = (m_cpu.rflags & fl::ZF) != 0;
            if ((in.rep && !zf) || (in.repne && zf)) {
                break;
            }
        }
    }
    m_cpu.rip = next_rip(in);
    return true;
}

}  // namespace vireo::soft
