// libFuzzer target: sizes typed on the command line (and later sent through the API).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "base/size.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    auto r = vireo::parse_size(text);
    if (r.ok() && (*r == 0)) {
        __builtin_trap();  // zero is documented as rejected
    }
    return 0;
}
