// Random x86-64 instruction snippets for the differential test, one instruction group at a time.
// Encodings are built from the SDM Vol. 2 opcode tables: [66] [F0/F2/F3] [REX] opcode ModRM
// [disp8] [imm]. Register operands avoid RSP (the harness's stack) and R15 (the scratch-buffer
// base); memory operands are [R15 + disp8] inside the scratch buffer.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace vireo::soft::test {

enum class Group { Alu, Shift, MulDiv, Bits, Move, String, Stack, Sse, X87 };

struct Snippet {
    std::vector<std::uint8_t> code;
    bool string_op = false;  // RSI/RDI hold scratch-buffer pointers, RCX a small count
    bool divide = false;     // bias RDX so that most divisions do not fault
    // CMPXCHG8B/16B at [R15 + disp]: the harness may load RDX:RAX from the buffer there so
    // that the compare also succeeds sometimes. -1 when absent; `wide` for 16B.
    int cmpxchg_disp = -1;
    bool wide = false;
};

Snippet generate(Group g, std::mt19937_64& rng);
std::string to_string(Group g);
std::string hex(const std::vector<std::uint8_t>& code);

}  // namespace vireo::soft::test
