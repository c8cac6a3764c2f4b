// Strict reading of untrusted JSON objects into typed fields (DESIGN.md §3: API input is hostile).
// Internal to api/: the parsers (api_parser.cpp, config_file.cpp) share it so a request body and
// the same section of a config file are validated alike.
//
// Firecracker's rules (serde with deny_unknown_fields): unknown fields, missing required fields,
// wrong JSON types and duplicate keys are errors; JSON null counts as absent for optional fields
// (Firecracker writes nulls in GET /vm/config, and that output must read back as a config file).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <nlohmann/json.hpp>

#include "api/enum_names.h"
#include "base/result.h"

namespace vireo::api_detail {

using Json = nlohmann::json;

// Deeper nesting than any request needs; checked before nlohmann parses (whose dump() and
// comparisons recurse).
inline constexpr int kMaxJsonDepth = 16;

// Parses `text` as one JSON value. Errors: malformed JSON, invalid UTF-8, duplicate keys in an
// object, nesting deeper than kMaxJsonDepth.
Result<Json> parse_json(std::string_view text);

// Untrusted `text` for an error message: control bytes escaped, cut after 64 bytes.
std::string printable_text(std::string_view text);
// The same in backquotes.
std::string quote_text(std::string_view text);

// What a string field may hold.
enum class StringKind : std::uint8_t {
    Text,     // anything without a NUL byte
    Path,     // a host path: 1..kApiMaxPathLength bytes, no NUL
    Id,       // a Firecracker id: 1..kApiMaxIdLength characters from [A-Za-z0-9_]
    DevName,  // a network device name: 1..15 bytes, no '/', ':', whitespace, NUL; not . or ..
};

// Checks `value` against `kind`; the error names `field`.
Result<void> check_string(std::string_view field, std::string_view value, StringKind kind);

// Reads one JSON object. Each accessor looks a key up (which makes it a known field), converts
// and checks it, and records the first problem; finish() then reports unknown fields first (a
// misspelt field is the likeliest mistake), else that first problem, each prefixed by `context`
// ("Drive", "drives[1]").
class ObjectReader {
public:
    ObjectReader(const Json& value, std::string context);

    void required(std::string_view key, std::string& out, StringKind kind);
    void optional(std::string_view key, std::optional<std::string>& out, StringKind kind);
    void required(std::string_view key, bool& out);
    void optional(std::string_view key, std::optional<bool>& out);
    // Absent or null leaves `out` at its default.
    void defaulted(std::string_view key, bool& out);

    // Unsigned integers in [min, max]; `why` explains the bounds in the error message.
    void required_uint(std::string_view key, std::uint64_t& out, std::uint64_t min,
                       std::uint64_t max, std::string_view why = {});
    void optional_uint(std::string_view key, std::optional<std::uint64_t>& out, std::uint64_t min,
                       std::uint64_t max, std::string_view why = {});

    template <typename E>
    void required_enum(std::string_view key, E& out,
                       std::type_identity_t<std::span<const EnumName<E>>> names,
                       bool ignore_case = false) {
        std::optional<E> value;
        read_enum(key, value, names, ignore_case, true);
        if (value) {
            out = *value;
        }
    }
    template <typename E>
    void optional_enum(std::string_view key, std::optional<E>& out,
                       std::type_identity_t<std::span<const EnumName<E>>> names,
                       bool ignore_case = false) {
        read_enum(key, out, names, ignore_case, false);
    }

    // An object of strings ({"k": "v", ...}); absent or null leaves `out` empty.
    void string_map(std::string_view key, std::map<std::string, std::string>& out);

    // An array of objects, each read by `read` with context "key[i]"; absent or null leaves
    // `out` empty.
    template <typename T>
    void object_array(std::string_view key, std::vector<T>& out,
                      Result<T> (*read)(const Json&, const std::string&)) {
        const Json* v = find_value(key, false);
        if (v == nullptr) {
            return;
        }
        if (!v->is_array()) {
            type_error(key, "an array", *v);
            return;
        }
        for (std::size_t i = 0; i < v->size(); ++i) {
            auto item = read((*v)[i], std::string(key) + "[" + std::to_string(i) + "]");
            if (!item) {
                fail(item.error().message());
                return;
            }
            out.push_back(std::move(item).value());
        }
    }
    // A nested object read by `read`; absent or null leaves `out` empty.
    template <typename T>
    void optional_object(std::string_view key, std::optional<T>& out,
                         Result<T> (*read)(const Json&, const std::string&)) {
        const Json* v = find_value(key, false);
        if (v == nullptr) {
            return;
        }
        auto item = read(*v, std::string(key));
        if (!item) {
            fail(item.error().message());
            return;
        }
        out = std::move(item).value();
    }

    // A field vireo does not support yet: present and not null is an error saying so, with
    // `note` in parentheses when given.
    void refuse(std::string_view key, std::string_view note = {});

    // Records an error found by the caller (cross-field checks), if none came first.
    void fail(std::string message);

    bool good() const { return !m_error && m_object != nullptr; }
    [[nodiscard]] Result<void> finish() const;

private:
    // The value of `key`, or nullptr when absent. Marks `key` known.
    const Json* find(std::string_view key);
    // Like find(), but null counts as absent, and a missing required field is recorded.
    const Json* find_value(std::string_view key, bool required);
    void type_error(std::string_view key, std::string_view expected, const Json& got);
    std::optional<std::uint64_t> read_uint(std::string_view key, const Json& v, std::uint64_t min,
                                           std::uint64_t max, std::string_view why);

    template <typename E>
    void read_enum(std::string_view key, std::optional<E>& out,
                   std::type_identity_t<std::span<const EnumName<E>>> names, bool ignore_case,
                   bool required) {
        const Json* v = find_value(key, required);
        if (v == nullptr) {
            return;
        }
        if (!v->is_string()) {
            type_error(key, "a string", *v);
            return;
        }
        const auto& text = v->get_ref<const std::string&>();
        std::string expected;
        for (const auto& n : names) {
            if (equal_names(text, n.name, ignore_case)) {
                out = n.value;
                return;
            }
            expected += expected.empty() ? "" : ", ";
            expected += "\"" + std::string(n.name) + "\"";
        }
        fail("`" + std::string(key) + "` must be one of " + expected + ", not " + quote_text(text));
    }
    static bool equal_names(std::string_view a, std::string_view b, bool ignore_case);

    const Json* m_object = nullptr;  // null when the value is not an object
    std::string m_context;
    std::vector<std::string> m_known;
    std::optional<std::string> m_error;
};

}  // namespace vireo::api_detail
