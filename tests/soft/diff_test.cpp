// Differential test against the host CPU (issue 16): random register states run through random
// instructions of one group natively (NativeRunner) and in the interpreter (User64, CPL3), and
// the GPRs, RFLAGS (less the flags Zydis reports undefined for the instruction) and a 256-byte
// scratch buffer must match; a fault must be a fault on both sides. The seed is printed;
// VIREO_SOFT_DIFF_SEED=<n> reproduces a run and VIREO_SOFT_DIFF_CASES=<n> sets the cases per
// group (default 10000; the long run uses e.g. 300000).
#include <gtest/gtest.h>

#include <Zydis/Zydis.h>

#include <chrono>
#include <cstdlib>
#include <cstring>

#include <fmt/format.h>

#include "native_runner.h"
#include "snippet_gen.h"
#include "soft_guest.h"

namespace vireo::soft::test {
namespace {

constexpr std::uint64_t kGuestBuffer = 0x100000;  // identity-mapped, user-accessible RAM
constexpr std::size_t kBufferSize = 256;
constexpr std::uint64_t kFlagsCompared =
    fl::CF | fl::PF | fl::AF | fl::ZF | fl::SF | fl::OF | fl::DF;

std::uint64_t env_u64(const char* name, std::uint64_t fallback) {
    const char* v = std::getenv(name);
    return v ? std::strtoull(v, nullptr, 0) : fallback;
}

std::uint64_t interesting(std::mt19937_64& rng) {
    static constexpr std::uint64_t kEdges[] = {0,
                                               1,
                                               2,
                                               0x7f,
                                               0x80,
                                               0xff,
                                               0x7fff,
                                               0x8000,
                                               0xffff,
                                               0x7fffffff,
                                               0x80000000,
                                               0xffffffff,
                                               0x7fffffffffffffffULL,
                                               0x8000000000000000ULL,
                                               ~0ULL,
                                               63,
                                               64,
                                               31,
                                               32};
    switch (rng() % 4) {
        case 0:
            return kEdges[rng() % std::size(kEdges)];
        case 1:
            return rng() % 256;
        default:
            return rng();
    }
}

std::uint32_t undefined_flags(const std::vector<std::uint8_t>& code) {
    ZydisDecoder dec;
    ZydisDecoderInit(&dec, ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64);
    ZydisDecodedInstruction in;
    ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT];
    if (!ZYAN_SUCCESS(ZydisDecoderDecodeFull(&dec, code.data(), code.size(), &in, ops))) {
        return 0;
    }
    return in.cpu_flags ? in.cpu_flags->undefined : 0;
}

// Mnemonic of a snippet, for messages.
std::string mnemonic(const std::vector<std::uint8_t>& code) {
    ZydisDecoder dec;
    ZydisDecoderInit(&dec, ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64);
    ZydisFormatter fmt_;
    ZydisFormatterInit(&fmt_, ZYDIS_FORMATTER_STYLE_INTEL);
    ZydisDecodedInstruction in;
    ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT];
    if (!ZYAN_SUCCESS(ZydisDecoderDecodeFull(&dec, code.data(), code.size(), &in, ops))) {
        return "(undecodable)";
    }
    char buf[128];
    ZydisFormatterFormatInstruction(&fmt_, &in, ops, in.operand_count_visible, buf, sizeof(buf), 0,
                                    nullptr);
    return buf;
}

void run_group(Group group) {
    const std::uint64_t seed = env_u64(
        "VIREO_SOFT_DIFF_SEED",
        static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()));
    const std::uint64_t cases = env_u64("VIREO_SOFT_DIFF_CASES", 10000);
    std::printf("[ diff     ] group %s: %llu cases, VIREO_SOFT_DIFF_SEED=%llu\n",
                to_string(group).c_str(), static_cast<unsigned long long>(cases),
                static_cast<unsigned long long>(seed));
    std::mt19937_64 rng(seed);

    NativeRunner native;
    alignas(64) static std::uint8_t host_buf[kBufferSize];
    std::uint8_t init_buf[kBufferSize];

    auto g = soft_guest(probe::CpuMode::User64, probe::Asm().hlt().code());
    ASSERT_TRUE(g);
    SoftVcpu& vcpu = soft_vcpu(*g);
    auto sregs = vcpu.get_sregs();
    ASSERT_TRUE(sregs.ok());
    sregs->cr4 |= (1u << 9) | (1u << 10);  // CR4.OSFXSR, OSXMMEXCPT: SSE on, as in the host
    ASSERT_TRUE(vcpu.set_sregs(*sregs).ok());

    std::uint64_t faults = 0, mismatches = 0;
    for (std::uint64_t n = 0; n < cases && mismatches < 5; ++n) {
        const Snippet s = generate(group, rng);
        for (auto& b : init_buf) {
            b = static_cast<std::uint8_t>(rng());
        }
        NativeState in{};
        for (unsigned r = 0; r < 16; ++r) {
            in.gpr[r] = interesting(rng);
        }
        // Arithmetic flags random; DF only for string instructions; IF set (user mode cannot
        // clear it), AC/TF clear.
        in.rflags = 0x202 | (rng() & (fl::kArith)) | (s.string_op && (rng() & 1) ? fl::DF : 0);
        // Pointer registers hold offsets into the scratch buffer until placed below.
        std::uint64_t rel[16] = {};
        bool is_ptr[16] = {};
        is_ptr[15] = true;
        rel[15] = 0;
        if (s.string_op) {
            is_ptr[6] = is_ptr[7] = true;
            rel[6] = 96 + rng() % 64;
            rel[7] = 96 + rng() % 64;
            in.gpr[1] = rng() % 9;
        }
        if (s.divide && (rng() % 4) != 0) {
            in.gpr[2] = (rng() & 1) ? 0 : ((in.gpr[0] >> 63) ? ~0ULL : 0);
        }
        if (s.cmpxchg_disp >= 0 && (rng() & 1)) {
            // Make the compare succeed: RDX:RAX = the operand in the buffer.
            const unsigned half = s.wide ? 8 : 4;
            std::uint64_t lo = 0, hi = 0;
            std::memcpy(&lo, init_buf + s.cmpxchg_disp, half);
            std::memcpy(&hi, init_buf + s.cmpxchg_disp + half, half);
            in.gpr[0] = (in.gpr[0] & ~(half == 8 ? ~0ULL : 0xffffffffULL)) | lo;
            in.gpr[2] = (in.gpr[2] & ~(half == 8 ? ~0ULL : 0xffffffffULL)) | hi;
        }
        for (auto& x : in.xmm) {
            for (auto& b : x) {
                b = static_cast<std::uint8_t>(rng());
            }
        }
        NativeState host = in;
        for (unsigned r = 0; r < 16; ++r) {
            if (is_ptr[r]) {
                host.gpr[r] = reinterpret_cast<std::uint64_t>(host_buf) + rel[r];
            }
        }
        std::memcpy(host_buf, init_buf, kBufferSize);
        const int sig = native.run(s.code, host);

        // The interpreter: same snippet at the code address, same state with guest pointers.
        std::vector<std::uint8_t> code = s.code;
        code.push_back(0xf4);
        ASSERT_TRUE(g->memory().write(GuestAddress(probe::kCodeAddress), code).ok());
        ASSERT_TRUE(g->memory().write(GuestAddress(kGuestBuffer), std::span(init_buf)).ok());
        Regs r;
        std::uint64_t gv[16];
        for (unsigned i = 0; i < 16; ++i) {
            gv[i] = is_ptr[i] ? kGuestBuffer + rel[i] : in.gpr[i];
        }
        gv[4] = probe::kStackTop;
        r.rax = gv[0];
        r.rcx = gv[1];
        r.rdx = gv[2];
        r.rbx = gv[3];
        r.rsp = gv[4];
        r.rbp = gv[5];
        r.rsi = gv[6];
        r.rdi = gv[7];
        r.r8 = gv[8];
        r.r9 = gv[9];
        r.r10 = gv[10];
        r.r11 = gv[11];
        r.r12 = gv[12];
        r.r13 = gv[13];
        r.r14 = gv[14];
        r.r15 = gv[15];
        r.rip = probe::kCodeAddress;
        r.rflags = in.rflags;  // IOPL 0, as the host process runs
        ASSERT_TRUE(vcpu.set_regs(r).ok());
        for (unsigned x = 0; x < 16; ++x) {
            std::memcpy(vcpu.interpreter().state().xmm[x].data(), in.xmm[x], 16);
        }
        // Multi-instruction snippets (the stack group) run until RIP reaches their end.
        RunStop stop{StopReason::None, {}};
        for (int i = 0; i < 16 && stop.reason == StopReason::None &&
                        vcpu.interpreter().state().rip != probe::kCodeAddress + s.code.size();
             ++i) {
            stop = vcpu.interpreter().step(1);
        }
        const bool soft_fault = stop.reason == StopReason::Shutdown;
        if (soft_fault) {
            ASSERT_TRUE(vcpu.set_sregs(*sregs).ok());  // undo whatever delivery touched
        }
        const std::string what = fmt::format("case {} [{}] {}", n, hex(s.code), mnemonic(s.code));
        if ((sig != 0) != soft_fault) {
            ++mismatches;
            ADD_FAILURE() << what << ": native signal " << sig << ", soft "
                          << (soft_fault
                                  ? fmt::format("fault vector {}", vcpu.interpreter().last_fault())
                                  : std::string("no fault"));
            continue;
        }
        if (sig != 0) {
            ++faults;
            const int v = vcpu.interpreter().last_fault();
            const bool same_kind =
                (sig == SIGFPE && v == kDe) || (sig == SIGILL && v == kUd) ||
                ((sig == SIGSEGV || sig == SIGBUS) && (v == kGp || v == kPf || v == kSsFault));
            EXPECT_TRUE(same_kind) << what << ": native signal " << sig << ", soft vector " << v;
            continue;
        }
        const CpuState& out = vcpu.interpreter().state();
        bool bad = false;
        std::string diff;
        for (unsigned i = 0; i < 16; ++i) {
            if (i == 4) {
                continue;
            }
            std::uint64_t nv = host.gpr[i], sv = out.gpr[i];
            if (is_ptr[i]) {
                nv -= reinterpret_cast<std::uint64_t>(host_buf);
                sv -= kGuestBuffer;
            }
            if (nv != sv) {
                bad = true;
                diff += fmt::format(" gpr{}: native {:#x} soft {:#x} (in {:#x});", i, nv, sv,
                                    in.gpr[i]);
            }
        }
        const std::uint64_t mask =
            kFlagsCompared & ~static_cast<std::uint64_t>(undefined_flags(s.code));
        if ((host.rflags & mask) != (out.rflags & mask)) {
            bad = true;
            diff += fmt::format(" rflags: native {:#x} soft {:#x} (in {:#x}, compared {:#x});",
                                host.rflags & mask, out.rflags & mask, in.rflags, mask);
        }
        for (unsigned x = 0; x < 16; ++x) {
            if (std::memcmp(out.xmm[x].data(), host.xmm[x], 16) != 0) {
                bad = true;
                std::uint64_t nx[2], sx[2];
                std::memcpy(nx, host.xmm[x], 16);
                std::memcpy(sx, out.xmm[x].data(), 16);
                diff += fmt::format(" xmm{}: native {:016x}{:016x} soft {:016x}{:016x};", x, nx[1],
                                    nx[0], sx[1], sx[0]);
            }
        }
        std::uint8_t guest_buf[kBufferSize];
        ASSERT_TRUE(g->memory().read(GuestAddress(kGuestBuffer), std::span(guest_buf)).ok());
        for (std::size_t i = 0; i < kBufferSize; ++i) {
            if (guest_buf[i] != host_buf[i]) {
                bad = true;
                diff +=
                    fmt::format(" mem[{}]: native {:#x} soft {:#x};", i, host_buf[i], guest_buf[i]);
                break;
            }
        }
        if (out.rip != probe::kCodeAddress + s.code.size()) {
            bad = true;
            diff += fmt::format(" rip: soft {:#x};", out.rip);
        }
        if (bad) {
            ++mismatches;
            ADD_FAILURE() << what << ":" << diff << " (seed " << seed << ")";
        }
    }
    std::printf("[ diff     ] group %s: %llu faults on both sides, %llu mismatches\n",
                to_string(group).c_str(), static_cast<unsigned long long>(faults),
                static_cast<unsigned long long>(mismatches));
}

TEST(SoftDiff, Alu) {
    run_group(Group::Alu);
}
TEST(SoftDiff, Shift) {
    run_group(Group::Shift);
}
TEST(SoftDiff, MulDiv) {
    run_group(Group::MulDiv);
}
TEST(SoftDiff, Bits) {
    run_group(Group::Bits);
}
TEST(SoftDiff, Move) {
    run_group(Group::Move);
}
TEST(SoftDiff, String) {
    run_group(Group::String);
}
TEST(SoftDiff, Stack) {
    run_group(Group::Stack);
}
TEST(SoftDiff, Sse) {
    run_group(Group::Sse);
}
TEST(SoftDiff, X87) {
    run_group(Group::X87);
}

}  // namespace
}  // namespace vireo::soft::test
