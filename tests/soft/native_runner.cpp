#include "native_runner.h"

#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>

#include <cstring>
#include <stdexcept>
#include <vector>

namespace vireo::soft::test {

namespace {

sigjmp_buf g_jump;
volatile sig_atomic_t g_signal = 0;

void on_fault(int sig) {
    g_signal = sig;
    siglongjmp(g_jump, 1);
}

constexpr std::size_t kPageBytes = 4096;

// mov r64, [rdi + 8*r] / mov [rdi + 8*r], r64 (REX.W 8B/89, ModRM mod=01 rm=rdi, disp8).
void mov_state(std::vector<std::uint8_t>& out, unsigned r, bool store) {
    out.push_back(static_cast<std::uint8_t>(0x48 | (r >= 8 ? 4 : 0)));
    out.push_back(store ? 0x89 : 0x8b);
    out.push_back(static_cast<std::uint8_t>(0x40 | ((r & 7) << 3) | 7));
    out.push_back(static_cast<std::uint8_t>(8 * r));
}

// movdqu xmm<x>, [rdi + 136 + 16x] (F3 0F 6F) / movdqu [rdi + ...], xmm<x> (F3 0F 7F).
void mov_xmm(std::vector<std::uint8_t>& out, unsigned x, bool store) {
    out.push_back(0xf3);
    if (x >= 8) {
        out.push_back(0x44);  // REX.R
    }
    out.push_back(0x0f);
    out.push_back(store ? 0x7f : 0x6f);
    out.push_back(static_cast<std::uint8_t>(0x80 | ((x & 7) << 3) | 7));  // [rdi + disp32]
    const std::uint32_t disp = 136 + 16 * x;
    for (int i = 0; i < 4; ++i) {
        out.push_back(static_cast<std::uint8_t>(disp >> (8 * i)));
    }
}

}  // namespace

NativeRunner::NativeRunner() {
    void* p = ::mmap(nullptr, kPageBytes, PROT_READ | PROT_WRITE | PROT_EXEC,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        throw std::runtime_error("mmap RWX page");
    }
    m_page = static_cast<std::uint8_t*>(p);
}

NativeRunner::~NativeRunner() {
    ::munmap(m_page, kPageBytes);
}

int NativeRunner::run(std::span<const std::uint8_t> code, NativeState& state) {
    std::vector<std::uint8_t> b;
    // Prologue (entered with RDI = &state): save the callee-saved registers and the state
    // pointer, load RFLAGS and every GPR but RSP, RDI last.
    for (std::uint8_t x : {0x53, 0x55, 0x41, 0x54, 0x41, 0x55, 0x41, 0x56, 0x41, 0x57, 0x57}) {
        b.push_back(x);  // push rbx, rbp, r12, r13, r14, r15, rdi
    }
    for (std::uint8_t x : {0xff, 0xb7, 0x80, 0x00, 0x00, 0x00, 0x9d}) {
        b.push_back(x);  // push qword [rdi+128]; popfq
    }
    for (unsigned x = 0; x < 16; ++x) {
        mov_xmm(b, x, false);
    }
    for (unsigned r = 0; r < 16; ++r) {
        if (r != 4 && r != 7) {
            mov_state(b, r, false);
        }
    }
    mov_state(b, 7, false);
    b.insert(b.end(), code.begin(), code.end());
    // Epilogue: RDI <-> saved pointer (XCHG leaves the flags alone), store the GPRs, then
    // RFLAGS through PUSHFQ, then the guest RDI.
    for (std::uint8_t x : {0x48, 0x87, 0x3c, 0x24}) {
        b.push_back(x);  // xchg rdi, [rsp]
    }
    for (unsigned r = 0; r < 16; ++r) {
        if (r != 4 && r != 7) {
            mov_state(b, r, true);
        }
    }
    for (unsigned x = 0; x < 16; ++x) {
        mov_xmm(b, x, true);
    }
    for (std::uint8_t x : {0x9c, 0x58, 0x48, 0x89, 0x87, 0x80, 0x00, 0x00, 0x00}) {
        b.push_back(x);  // pushfq; pop rax; mov [rdi+128], rax
    }
    b.push_back(0xfc);  // cld: the ABI wants DF clear on return
    for (std::uint8_t x : {0x58, 0x48, 0x89, 0x47, 0x38}) {
        b.push_back(x);  // pop rax; mov [rdi+56], rax
    }
    for (std::uint8_t x : {0x41, 0x5f, 0x41, 0x5e, 0x41, 0x5d, 0x41, 0x5c, 0x5d, 0x5b, 0xc3}) {
        b.push_back(x);  // pop r15, r14, r13, r12, rbp, rbx; ret
    }
    if (b.size() > kPageBytes) {
        throw std::runtime_error("snippet too long");
    }
    std::memcpy(m_page, b.data(), b.size());

    struct sigaction sa {};
    sa.sa_handler = on_fault;
    sa.sa_flags = SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    struct sigaction old[5];
    const int sigs[5] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP};
    for (int i = 0; i < 5; ++i) {
        sigaction(sigs[i], &sa, &old[i]);
    }
    g_signal = 0;
    using Fn = void (*)(NativeState*);
    auto fn = reinterpret_cast<Fn>(reinterpret_cast<std::uintptr_t>(m_page));
    if (sigsetjmp(g_jump, 1) == 0) {
        fn(&state);
    } else {
        asm volatile("cld");  // the snippet may have set DF before faulting
    }
    for (int i = 0; i < 5; ++i) {
        sigaction(sigs[i], &old[i], nullptr);
    }
    return g_signal;
}

}  // namespace vireo::soft::test
