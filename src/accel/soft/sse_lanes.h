// An XMM register's 16 bytes and access to its lanes (exec_sse.cpp, exec_sse_fp.cpp).
#pragma once

#include <array>
#include <cstdint>
#include <cstring>

namespace vireo::soft {

using V128 = std::array<std::uint8_t, 16>;

template <typename T>
T lane(const V128& v, unsigned i) {
    T x;
    std::memcpy(&x, v.data() + i * sizeof(T), sizeof(T));
    return x;
}

template <typename T>
void set_lane(V128& v, unsigned i, T x) {
    std::memcpy(v.data() + i * sizeof(T), &x, sizeof(T));
}

}  // namespace vireo::soft
