// Runs a user-mode instruction snippet natively on the host CPU from a given register state and
// returns the state after it (the reference side of the differential test). The snippet is
// copied into an RWX page between a prologue that loads every GPR but RSP and RFLAGS from a
// State and an epilogue that stores them back; a fault inside it (SIGSEGV, SIGFPE, SIGILL...)
// is caught with sigsetjmp/siglongjmp and reported, so it cannot kill the test.
#pragma once

#include <cstdint>
#include <span>

namespace vireo::soft::test {

struct NativeState {
    std::uint64_t gpr[16];  // hardware order: RAX RCX RDX RBX RSP RBP RSI RDI R8..R15 (RSP unused)
    std::uint64_t rflags;
    alignas(8) std::uint8_t xmm[16][16];  // XMM0-15, loaded and stored with MOVDQU
};
static_assert(sizeof(NativeState) == 392);

class NativeRunner {
public:
    NativeRunner();
    ~NativeRunner();
    NativeRunner(const NativeRunner&) = delete;
    NativeRunner& operator=(const NativeRunner&) = delete;

    // Runs `code` with `state` in and out. Returns 0, or the signal number that stopped it.
    int run(std::span<const std::uint8_t> code, NativeState& state);

private:
    std::uint8_t* m_page = nullptr;
};

}  // namespace vireo::soft::test
