// Saved state as bytes. Each State struct has one persist() function that names its fields once
// and serves both directions, so saving and loading cannot drift apart (DESIGN.md §4):
//
//     template <typename Ar>
//     void persist(Ar& ar, Serial8250State& s) {
//         ar(s.ier, s.lcr, s.thr_interrupt_pending);
//         ar.vec(s.rx_fifo, Serial8250::kRxCapacity);  // every variable size has a cap
//     }
//
// Encoding: integers and enums little-endian at their own width, bool as one byte (0 or 1),
// std::array element by element, vectors and strings as a u32 count then the elements, optional
// as a presence byte then the value, other structs through their own persist(). No field names
// or tags: the container's format version covers the layout.
//
// Saved state is input (a file from anywhere): the reader checks every count against its cap and
// every read against the end of the bytes. The first problem sticks, later reads yield zeros,
// and finish() reports it. Whether the values make sense is the component's restore_state()'s
// business.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "base/result.h"

namespace vireo {

namespace archive_detail {
template <typename T>
struct is_std_array : std::false_type {};
template <typename T, std::size_t N>
struct is_std_array<std::array<T, N>> : std::true_type {};
}  // namespace archive_detail

class StateWriter {
public:
    static constexpr bool kReading = false;

    template <typename... T>
    void operator()(T&... fields) {
        (put(fields), ...);
    }
    template <typename T>
    void vec(std::vector<T>& v, std::size_t /*max*/) {
        put_count(v.size());
        if constexpr (std::is_same_v<T, std::uint8_t>) {
            m_out.insert(m_out.end(), v.begin(), v.end());
        } else {
            for (auto& e : v) {
                put(e);
            }
        }
    }
    void str(std::string& s, std::size_t /*max*/) {
        put_count(s.size());
        m_out.insert(m_out.end(), s.begin(), s.end());
    }
    template <typename T>
    void opt(std::optional<T>& o) {
        bool present = o.has_value();
        put(present);
        if (present) {
            put(*o);
        }
    }
    // Writers never fail; the method exists so persist() can report bad values while loading.
    void fail(std::string /*message*/) {}
    bool failed() const { return false; }

    const std::vector<std::uint8_t>& bytes() const { return m_out; }
    std::vector<std::uint8_t> take() { return std::move(m_out); }

private:
    void put_count(std::size_t n) {
        auto c = static_cast<std::uint32_t>(n);
        put(c);
    }
    template <typename T>
    void put(T& v) {
        if constexpr (std::is_same_v<T, bool>) {
            m_out.push_back(v ? 1 : 0);
        } else if constexpr (std::is_integral_v<T> || std::is_enum_v<T>) {
            // x86-64 is little-endian: the in-memory bytes are the encoding.
            const auto* p = reinterpret_cast<const std::uint8_t*>(&v);
            m_out.insert(m_out.end(), p, p + sizeof(T));
        } else if constexpr (archive_detail::is_std_array<T>::value) {
            if constexpr (std::is_same_v<typename T::value_type, std::uint8_t>) {
                m_out.insert(m_out.end(), v.begin(), v.end());
            } else {
                for (auto& e : v) {
                    put(e);
                }
            }
        } else {
            persist(*this, v);
        }
    }
    std::vector<std::uint8_t> m_out;
};

class StateReader {
public:
    static constexpr bool kReading = true;

    explicit StateReader(std::span<const std::uint8_t> in) : m_in(in) {}

    template <typename... T>
    void operator()(T&... fields) {
        (get(fields), ...);
    }
    template <typename T>
    void vec(std::vector<T>& v, std::size_t max) {
        const std::size_t n = get_count(max);
        v.clear();
        if constexpr (std::is_same_v<T, std::uint8_t>) {
            if (auto src = take(n); !src.empty()) {
                v.assign(src.begin(), src.end());
            }
        } else {
            v.resize(n);
            for (auto& e : v) {
                get(e);
            }
        }
    }
    void str(std::string& s, std::size_t max) {
        const std::size_t n = get_count(max);
        auto src = take(n);
        s.assign(src.begin(), src.end());
    }
    template <typename T>
    void opt(std::optional<T>& o) {
        bool present = false;
        get(present);
        o.reset();
        if (present && !failed()) {
            o.emplace();
            get(*o);
        }
    }
    // Records the first problem (later ones are consequences).
    void fail(std::string message) {
        if (!m_error) {
            m_error = std::move(message);
        }
    }
    bool failed() const { return m_error.has_value(); }
    std::size_t remaining() const { return m_in.size() - m_pos; }

    // Ok when every read fit and every byte was consumed.
    Result<void> finish() const {
        if (m_error) {
            return Error(*m_error);
        }
        if (m_pos != m_in.size()) {
            return Error(std::to_string(m_in.size() - m_pos) + " unexpected trailing bytes");
        }
        return ok();
    }

private:
    // The next n bytes, or an empty span (and a recorded failure) when they are not there.
    std::span<const std::uint8_t> take(std::size_t n) {
        if (failed()) {
            return {};
        }
        if (n > m_in.size() - m_pos) {
            fail("truncated: wanted " + std::to_string(n) + " bytes at offset " +
                 std::to_string(m_pos) + ", " + std::to_string(m_in.size() - m_pos) + " left");
            return {};
        }
        auto s = m_in.subspan(m_pos, n);
        m_pos += n;
        return s;
    }
    std::size_t get_count(std::size_t max) {
        std::uint32_t n = 0;
        get(n);
        if (n > max) {
            fail("a count of " + std::to_string(n) + " exceeds the limit of " +
                 std::to_string(max));
            return 0;
        }
        return n;
    }
    template <typename T>
    void get(T& v) {
        if constexpr (std::is_same_v<T, bool>) {
            std::uint8_t b = 0;
            get(b);
            if (b > 1) {
                fail("a boolean holds " + std::to_string(b));
            }
            v = b == 1;
        } else if constexpr (std::is_integral_v<T> || std::is_enum_v<T>) {
            auto src = take(sizeof(T));
            v = T{};
            if (!src.empty()) {
                std::memcpy(&v, src.data(), sizeof(T));
            }
        } else if constexpr (archive_detail::is_std_array<T>::value) {
            if constexpr (std::is_same_v<typename T::value_type, std::uint8_t>) {
                auto src = take(v.size());
                v.fill(0);
                if (!src.empty()) {
                    std::memcpy(v.data(), src.data(), v.size());
                }
            } else {
                for (auto& e : v) {
                    get(e);
                }
            }
        } else {
            persist(*this, v);
        }
    }

    std::span<const std::uint8_t> m_in;
    std::size_t m_pos = 0;
    std::optional<std::string> m_error;
};

// One component's state to bytes and back.
template <typename T>
std::vector<std::uint8_t> save_to_bytes(T state) {
    StateWriter w;
    w(state);
    return w.take();
}

template <typename T>
Result<T> load_from_bytes(std::span<const std::uint8_t> bytes) {
    StateReader r(bytes);
    T state{};
    r(state);
    if (auto done = r.finish(); !done) {
        return done.error();
    }
    return state;
}

}  // namespace vireo
