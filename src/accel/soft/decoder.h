// Zydis 4 front end: decodes one instruction for a CPU mode into an Insn (ZydisDecoderDecodeFull,
// then a conversion to the interpreter's compact form).
#pragma once

#include <cstddef>
#include <cstdint>

#include "accel/soft/decoded_insn.h"

namespace vireo::soft {

enum class DecodeStatus { Ok, NeedMoreBytes, Invalid };

class Decoder {
public:
    Decoder();
    // `bytes` is what is readable at RIP (up to 15). NeedMoreBytes when the instruction runs
    // past the end of `bytes` (a page crossing); Invalid raises #UD.
    DecodeStatus decode(CpuMode mode, const std::uint8_t* bytes, std::size_t len, Insn& out) const;

private:
    ZydisDecoder m_dec[6];  // indexed by CpuMode
};

}  // namespace vireo::soft
