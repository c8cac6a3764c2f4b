#include "api/json_reader.h"

#include <algorithm>
#include <cctype>
#include <set>

#include "api/api_types.h"

namespace vireo::api_detail {

namespace {

// Nesting depth of `text` counted on the raw bytes ('{' and '[' outside strings), so a hostile
// body is refused before nlohmann builds a tree from it.
bool nesting_within(std::string_view text, int max_depth) {
    int depth = 0;
    bool in_string = false;
    bool escaped = false;
    for (char c : text) {
        if (in_string) {
            if (escaped) {
                escaped = false;
            } else if (c == '\\') {
                escaped = true;
            } else if (c == '"') {
                in_string = false;
            }
        } else if (c == '"') {
            in_string = true;
        } else if (c == '{' || c == '[') {
            if (++depth > max_depth) {
                return false;
            }
        } else if (c == '}' || c == ']') {
            --depth;
        }
    }
    return true;
}

std::string describe_number(const Json& v) {
    return v.dump(-1, ' ', false, Json::error_handler_t::replace);
}

}  // namespace

Result<Json> parse_json(std::string_view text) {
    if (text.find_first_not_of(" \t\r\n") == std::string_view::npos) {
        return Error("empty JSON body");
    }
    if (!nesting_within(text, kMaxJsonDepth)) {
        return Error("malformed JSON: nested deeper than " + std::to_string(kMaxJsonDepth) +
                     " levels");
    }
    // One set of keys per open object, innermost last; callbacks never discard values, so
    // object_start and object_end pair up.
    std::vector<std::set<std::string>> open_objects;
    std::optional<std::string> duplicate;
    auto callback = [&](int /*depth*/, Json::parse_event_t event, Json& parsed) {
        switch (event) {
            case Json::parse_event_t::object_start:
                open_objects.emplace_back();
                break;
            case Json::parse_event_t::object_end:
                if (!open_objects.empty()) {
                    open_objects.pop_back();
                }
                break;
            case Json::parse_event_t::key:
                if (!open_objects.empty() && parsed.is_string() &&
                    !open_objects.back().insert(parsed.get<std::string>()).second && !duplicate) {
                    duplicate = parsed.get<std::string>();
                }
                break;
            default:
                break;
        }
        return true;
    };
    Json value;
    try {
        value = Json::parse(text.begin(), text.end(), callback);
    } catch (const Json::exception& e) {
        // e.what() is "[json.exception.parse_error.101] parse error at line 1, column 2: ...".
        std::string what = e.what();
        auto bracket = what.find("] ");
        if (what.starts_with("[json.exception") && bracket != std::string::npos) {
            what.erase(0, bracket + 2);
        }
        return Error("malformed JSON: " + what);
    }
    if (duplicate) {
        return Error("malformed JSON: duplicate field " + quote_text(*duplicate));
    }
    return value;
}

std::string printable_text(std::string_view text) {
    constexpr std::size_t kMax = 64;
    std::string out;
    for (std::size_t i = 0; i < text.size() && i < kMax; ++i) {
        auto c = static_cast<unsigned char>(text[i]);
        if (c < 0x20 || c == 0x7f) {
            static constexpr char kHex[] = "0123456789abcdef";
            out += "\\x";
            out += kHex[c >> 4];
            out += kHex[c & 0xf];
        } else {
            out += static_cast<char>(c);
        }
    }
    if (text.size() > kMax) {
        out += "...";
    }
    return out;
}

std::string quote_text(std::string_view text) {
    return "`" + printable_text(text) + "`";
}

Result<void> check_string(std::string_view field, std::string_view value, StringKind kind) {
    const std::string name = "`" + std::string(field) + "`";
    if (value.find('\0') != std::string_view::npos) {
        return Error(name + " must not contain NUL characters");
    }
    switch (kind) {
        case StringKind::Text:
            return ok();
        case StringKind::Path:
            if (value.empty()) {
                return Error(name + " must not be empty");
            }
            if (value.size() > kApiMaxPathLength) {
                return Error(name + " is longer than " + std::to_string(kApiMaxPathLength) +
                             " bytes");
            }
            return ok();
        case StringKind::Id: {
            bool valid = !value.empty() && value.size() <= kApiMaxIdLength &&
                         std::all_of(value.begin(), value.end(), [](char c) {
                             return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_';
                         });
            if (!valid) {
                return Error(name + " " + quote_text(value) + " is not a valid id (1 to " +
                             std::to_string(kApiMaxIdLength) +
                             " characters, letters, digits and '_' only)");
            }
            return ok();
        }
        case StringKind::DevName: {
            bool valid =
                !value.empty() && value.size() <= kApiMaxHostDevNameLength && value != "." &&
                value != ".." && std::none_of(value.begin(), value.end(), [](char c) {
                    return c == '/' || c == ':' || std::isspace(static_cast<unsigned char>(c)) != 0;
                });
            if (!valid) {
                return Error(name + " " + quote_text(value) +
                             " is not a valid network device name (1 to " +
                             std::to_string(kApiMaxHostDevNameLength) +
                             " bytes, no '/', ':' or whitespace)");
            }
            return ok();
        }
    }
    return ok();
}

ObjectReader::ObjectReader(const Json& value, std::string context) : m_context(std::move(context)) {
    if (value.is_object()) {
        m_object = &value;
    } else {
        m_error = std::string("expected a JSON object, not ") + value.type_name();
    }
}

const Json* ObjectReader::find(std::string_view key) {
    m_known.emplace_back(key);
    if (m_object == nullptr) {
        return nullptr;
    }
    auto it = m_object->find(std::string(key));
    return it == m_object->end() ? nullptr : &*it;
}

const Json* ObjectReader::find_value(std::string_view key, bool required) {
    const Json* v = find(key);
    if (m_object == nullptr) {
        return nullptr;
    }
    if (v == nullptr || (v->is_null() && !required)) {
        if (required) {
            fail("missing required field `" + std::string(key) + "`");
        }
        return nullptr;
    }
    return v;
}

void ObjectReader::fail(std::string message) {
    if (!m_error) {
        m_error = std::move(message);
    }
}

void ObjectReader::type_error(std::string_view key, std::string_view expected, const Json& got) {
    fail("`" + std::string(key) + "` must be " + std::string(expected) + ", not " +
         got.type_name());
}

void ObjectReader::required(std::string_view key, std::string& out, StringKind kind) {
    std::optional<std::string> value;
    if (const Json* v = find_value(key, true)) {
        if (!v->is_string()) {
            return type_error(key, "a string", *v);
        }
        value = v->get<std::string>();
    }
    if (value) {
        if (auto checked = check_string(key, *value, kind); !checked) {
            return fail(checked.error().message());
        }
        out = std::move(*value);
    }
}

void ObjectReader::optional(std::string_view key, std::optional<std::string>& out,
                            StringKind kind) {
    const Json* v = find_value(key, false);
    if (v == nullptr) {
        return;
    }
    if (!v->is_string()) {
        return type_error(key, "a string", *v);
    }
    const auto& text = v->get_ref<const std::string&>();
    if (auto checked = check_string(key, text, kind); !checked) {
        return fail(checked.error().message());
    }
    out = text;
}

void ObjectReader::required(std::string_view key, bool& out) {
    if (const Json* v = find_value(key, true)) {
        if (!v->is_boolean()) {
            return type_error(key, "a boolean", *v);
        }
        out = v->get<bool>();
    }
}

void ObjectReader::optional(std::string_view key, std::optional<bool>& out) {
    if (const Json* v = find_value(key, false)) {
        if (!v->is_boolean()) {
            return type_error(key, "a boolean", *v);
        }
        out = v->get<bool>();
    }
}

void ObjectReader::defaulted(std::string_view key, bool& out) {
    std::optional<bool> value;
    optional(key, value);
    if (value) {
        out = *value;
    }
}

std::optional<std::uint64_t> ObjectReader::read_uint(std::string_view key, const Json& v,
                                                     std::uint64_t min, std::uint64_t max,
                                                     std::string_view why) {
    const std::string name = "`" + std::string(key) + "`";
    // nlohmann keeps non-negative integers as unsigned, negative ones as signed, and anything
    // with a fraction, an exponent or beyond 64 bits as a double.
    if (v.is_number_integer() && !v.is_number_unsigned()) {
        fail(name + " must not be negative, got " + describe_number(v));
        return std::nullopt;
    }
    if (v.is_number_float()) {
        fail(name + " must be an unsigned integer, got " + describe_number(v));
        return std::nullopt;
    }
    if (!v.is_number_unsigned()) {
        type_error(key, "an unsigned integer", v);
        return std::nullopt;
    }
    auto n = v.get<std::uint64_t>();
    if (n < min || n > max) {
        std::string message =
            name + " must be between " + std::to_string(min) + " and " + std::to_string(max);
        if (!why.empty()) {
            message += " (" + std::string(why) + ")";
        }
        fail(message + ", got " + std::to_string(n));
        return std::nullopt;
    }
    return n;
}

void ObjectReader::required_uint(std::string_view key, std::uint64_t& out, std::uint64_t min,
                                 std::uint64_t max, std::string_view why) {
    if (const Json* v = find_value(key, true)) {
        if (auto n = read_uint(key, *v, min, max, why)) {
            out = *n;
        }
    }
}

void ObjectReader::optional_uint(std::string_view key, std::optional<std::uint64_t>& out,
                                 std::uint64_t min, std::uint64_t max, std::string_view why) {
    if (const Json* v = find_value(key, false)) {
        if (auto n = read_uint(key, *v, min, max, why)) {
            out = *n;
        }
    }
}

void ObjectReader::string_map(std::string_view key, std::map<std::string, std::string>& out) {
    const Json* v = find_value(key, false);
    if (v == nullptr) {
        return;
    }
    if (!v->is_object()) {
        return type_error(key, "an object of strings", *v);
    }
    for (const auto& [k, item] : v->items()) {
        if (!item.is_string()) {
            return fail("`" + std::string(key) + "." + k + "` must be a string, not " +
                        item.type_name());
        }
        if (auto checked =
                check_string(std::string(key) + "." + k, item.get<std::string>(), StringKind::Text);
            !checked) {
            return fail(checked.error().message());
        }
        out[k] = item.get<std::string>();
    }
}

void ObjectReader::refuse(std::string_view key, std::string_view note) {
    if (find_value(key, false) != nullptr) {
        std::string message = "`" + std::string(key) + "` is not supported by vireo yet";
        if (!note.empty()) {
            message += " (" + std::string(note) + ")";
        }
        fail(message);
    }
}

bool ObjectReader::equal_names(std::string_view a, std::string_view b, bool ignore_case) {
    if (!ignore_case) {
        return a == b;
    }
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) ==
                      std::tolower(static_cast<unsigned char>(y));
           });
}

Result<void> ObjectReader::finish() const {
    if (m_object != nullptr) {
        std::vector<std::string> unknown;
        for (const auto& [k, v] : m_object->items()) {
            if (std::find(m_known.begin(), m_known.end(), k) == m_known.end()) {
                unknown.push_back(quote_text(k));
            }
        }
        if (!unknown.empty()) {
            std::string message = m_context + ": unknown field";
            message += unknown.size() > 1 ? "s " : " ";
            for (std::size_t i = 0; i < unknown.size() && i < 8; ++i) {
                message += (i != 0 ? ", " : "") + unknown[i];
            }
            if (unknown.size() > 8) {
                message += ", ...";
            }
            message += "; expected ";
            if (m_known.empty()) {
                message += "no fields";
            } else {
                message += "one of";
                for (std::size_t i = 0; i < m_known.size(); ++i) {
                    message += (i != 0 ? ", `" : " `") + m_known[i] + "`";
                }
            }
            return Error(message);
        }
    }
    if (m_error) {
        return Error(m_context + ": " + *m_error);
    }
    return ok();
}

}  // namespace vireo::api_detail
