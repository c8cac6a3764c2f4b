// Two-operand and one-operand integer arithmetic, logic, shifts and rotates (SDM Vol. 2: ADD,
// ADC, SUB, SBB, AND, OR, XOR, CMP, TEST, INC, DEC, NEG, NOT, SAL/SAR/SHL/SHR, RCL/RCR/ROL/ROR,
// SHLD, SHRD). Results and flags come from the host ALU (alu.h). A LOCK prefix on a memory
// destination is a compare-and-swap loop on the host page, so it is atomic against other vCPUs.
#include "accel/soft/alu.h"
#include "accel/soft/interpreter_inline.h"

namespace vireo::soft {

namespace {

template <typename T>
bool cas(std::uint8_t* p, T& expected, T desired) {
    return __atomic_compare_exchange_n(reinterpret_cast<T*>(p), &expected, desired, false,
                                       __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
}

// dst = f(dst, src) with the flags of `mask` taken from f; no write-back for CMP/TEST.
template <typename T, typename F>
void binop(Interpreter& c, const Insn& in, const Operand& d, T b, F f, std::uint64_t mask,
           bool write_back) {
    if (d.kind == OpKind::Gpr) {
        T a = static_cast<T>(c.get_gpr(d.reg, sizeof(T), d.hi8));
        const std::uint64_t flags = f(a, b);
        if (write_back) {
            c.set_gpr(d.reg, sizeof(T), a, d.hi8);
        }
        alu::merge(c.m_cpu.rflags, flags, mask);
        return;
    }
    if (d.kind != OpKind::Mem) {
        raise(kUd);
    }
    const std::uint64_t off = c.ea(d, in);
    if (in.lock && write_back) {
        const std::uint64_t lin = c.linear(d.seg, off);
        if (std::uint8_t* p = c.m_mmu.rmw_pointer(lin, sizeof(T), c.user())) {
            T old = 0;
            std::memcpy(&old, p, sizeof(T));
            T nv;
            std::uint64_t flags;
            do {
                nv = old;
                flags = f(nv, b);
            } while (!cas<T>(p, old, nv));
            alu::merge(c.m_cpu.rflags, flags, mask);
            return;
        }
        // Split across pages or MMIO: not atomic (a split lock), done as read + write.
    }
    T a = static_cast<T>(c.mem_read(d.seg, off, sizeof(T)));
    const std::uint64_t flags = f(a, b);
    if (write_back) {
        c.mem_write(d.seg, off, sizeof(T), a);
    }
    alu::merge(c.m_cpu.rflags, flags, mask);
}

template <typename T>
bool alu_sized(Interpreter& c, const Insn& in) {
    const Operand& d = in.op[0];
    const std::uint64_t cf = c.m_cpu.rflags & fl::CF;
    constexpr std::uint64_t all = fl::kArith;
    switch (in.mnemonic) {
        case ZYDIS_MNEMONIC_ADD:
            binop<T>(
                c, in, d, static_cast<T>(c.rd(in.op[1], in)),
                [](T& a, T b) { return alu::add(a, b); }, all, true);
            return true;
        case ZYDIS_MNEMONIC_ADC:
            binop<T>(
                c, in, d, static_cast<T>(c.rd(in.op[1], in)),
                [cf](T& a, T b) { return alu::adc(a, b, cf); }, all, true);
            return true;
        case ZYDIS_MNEMONIC_SUB:
            binop<T>(
                c, in, d, static_cast<T>(c.rd(in.op[1], in)),
                [](T& a, T b) { return alu::sub(a, b); }, all, true);
            return true;
        case ZYDIS_MNEMONIC_SBB:
            binop<T>(
                c, in, d, static_cast<T>(c.rd(in.op[1], in)),
                [cf](T& a, T b) { return alu::sbb(a, b, cf); }, all, true);
            return true;
        case ZYDIS_MNEMONIC_CMP:
            binop<T>(
                c, in, d, static_cast<T>(c.rd(in.op[1], in)),
                [](T& a, T b) { return alu::sub(a, b); }, all, false);
            return true;
        case ZYDIS_MNEMONIC_AND:
            binop<T>(
                c, in, d, static_cast<T>(c.rd(in.op[1], in)),
                [](T& a, T b) { return alu::and_(a, b); }, all, true);
            return true;
        case ZYDIS_MNEMONIC_TEST:
            binop<T>(
                c, in, d, static_cast<T>(c.rd(in.op[1], in)),
                [](T& a, T b) { return alu::and_(a, b); }, all, false);
            return true;
        case ZYDIS_MNEMONIC_OR:
            binop<T>(
                c, in, d, static_cast<T>(c.rd(in.op[1], in)),
                [](T& a, T b) { return alu::or_(a, b); }, all, true);
            return true;
        case ZYDIS_MNEMONIC_XOR:
            binop<T>(
                c, in, d, static_cast<T>(c.rd(in.op[1], in)),
                [](T& a, T b) { return alu::xor_(a, b); }, all, true);
            return true;
        case ZYDIS_MNEMONIC_INC:  // CF is not affected (SDM Vol. 2, INC)
            binop<T>(
                c, in, d, T{}, [](T& a, T) { return alu::inc(a); }, all & ~fl::CF, true);
            return true;
        case ZYDIS_MNEMONIC_DEC:
            binop<T>(
                c, in, d, T{}, [](T& a, T) { return alu::dec(a); }, all & ~fl::CF, true);
            return true;
        case ZYDIS_MNEMONIC_NEG:
            binop<T>(
                c, in, d, T{}, [](T& a, T) { return alu::neg(a); }, all, true);
            return true;
        case ZYDIS_MNEMONIC_NOT:
            binop<T>(
                c, in, d, T{},
                [](T& a, T) {
                    a = static_cast<T>(~a);
                    return std::uint64_t{0};
                },
                0, true);
            return true;
        default:
            break;
    }
    // Shifts and rotates: the count is masked to 5 bits (6 with REX.W); a masked count of 0
    // changes neither the operand nor the flags (SDM Vol. 2, SAL/SAR/SHL/SHR "Flags Affected").
    const std::uint8_t count_mask = sizeof(T) == 8 ? 0x3f : 0x1f;
    std::uint8_t count = 1;
    if (in.nops >= 2 && in.mnemonic != ZYDIS_MNEMONIC_SHLD && in.mnemonic != ZYDIS_MNEMONIC_SHRD) {
        count = static_cast<std::uint8_t>(c.rd(in.op[1], in));
    } else if (in.nops >= 3) {
        count = static_cast<std::uint8_t>(c.rd(in.op[2], in));
    }
    count &= count_mask;
    auto shift = [&](auto fn, std::uint64_t mask) {
        if (count == 0) {
            // Still an access: a read of a memory operand can fault. A 32-bit register
            // destination is written back, i.e. zero-extended, as the hardware does.
            const std::uint64_t v = c.rd(d, in);
            if (d.kind == OpKind::Gpr && sizeof(T) == 4) {
                c.set_gpr(d.reg, 4, v);
            }
            return true;
        }
        binop<T>(
            c, in, d, T{}, [&](T& a, T) { return fn(a); }, mask, true);
        return true;
    };
    const std::uint64_t rot = fl::CF | fl::OF;
    switch (in.mnemonic) {
        case ZYDIS_MNEMONIC_SHL:
            return shift([&](T& a) { return alu::shl(a, count, cf); }, all);
        case ZYDIS_MNEMONIC_SHR:
            return shift([&](T& a) { return alu::shr(a, count, cf); }, all);
        case ZYDIS_MNEMONIC_SAR:
            return shift([&](T& a) { return alu::sar(a, count, cf); }, all);
        case ZYDIS_MNEMONIC_ROL:
            return shift([&](T& a) { return alu::rol(a, count, cf); }, rot);
        case ZYDIS_MNEMONIC_ROR:
            return shift([&](T& a) { return alu::ror(a, count, cf); }, rot);
        case ZYDIS_MNEMONIC_RCL:
            return shift([&](T& a) { return alu::rcl(a, count, cf); }, rot);
        case ZYDIS_MNEMONIC_RCR:
            return shift([&](T& a) { return alu::rcr(a, count, cf); }, rot);
        case ZYDIS_MNEMONIC_SHLD:
        case ZYDIS_MNEMONIC_SHRD:
            if constexpr (sizeof(T) == 1) {
                raise(kUd);
            } else {
                const T b = static_cast<T>(c.rd(in.op[1], in));
                const bool left = in.mnemonic == ZYDIS_MNEMONIC_SHLD;
                return shift(
                    [&](T& a) { return left ? alu::shld(a, b, count) : alu::shrd(a, b, count); },
                    all);
            }
        default:
            return false;
    }
}

}  // namespace

bool Interpreter::exec_alu(const Insn& in) {
    switch (in.mnemonic) {
        case ZYDIS_MNEMONIC_ADD:
        case ZYDIS_MNEMONIC_ADC:
        case ZYDIS_MNEMONIC_SUB:
        case ZYDIS_MNEMONIC_SBB:
        case ZYDIS_MNEMONIC_CMP:
        case ZYDIS_MNEMONIC_AND:
        case ZYDIS_MNEMONIC_TEST:
        case ZYDIS_MNEMONIC_OR:
        case ZYDIS_MNEMONIC_XOR:
        case ZYDIS_MNEMONIC_INC:
        case ZYDIS_MNEMONIC_DEC:
        case ZYDIS_MNEMONIC_NEG:
        case ZYDIS_MNEMONIC_NOT:
        case ZYDIS_MNEMONIC_SHL:
        case ZYDIS_MNEMONIC_SHR:
        case ZYDIS_MNEMONIC_SAR:
        case ZYDIS_MNEMONIC_ROL:
        case ZYDIS_MNEMONIC_ROR:
        case ZYDIS_MNEMONIC_RCL:
        case ZYDIS_MNEMONIC_RCR:
        case ZYDIS_MNEMONIC_SHLD:
        case ZYDIS_MNEMONIC_SHRD:
            break;
        default:
            return false;
    }
    bool done = false;
    switch (in.op[0].size) {
        case 1:
            done = alu_sized<std::uint8_t>(*this, in);
            break;
        case 2:
            done = alu_sized<std::uint16_t>(*this, in);
            break;
        case 4:
            done = alu_sized<std::uint32_t>(*this, in);
            break;
        case 8:
            done = alu_sized<std::uint64_t>(*this, in);
            break;
        default:
            raise(kUd);
    }
    if (done) {
        m_cpu.rip = next_rip(in);
    }
    return done;
}

}  // namespace vireo::soft
