#include "api/http_request_head.h"

#include <algorithm>
#include <charconv>
#include <optional>

namespace vireo {

namespace {

constexpr std::string_view kCrlf = "\r\n";

// RFC 9110 §5.6.2 tchar.
bool is_token_char(char c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
        return true;
    }
    return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c; };
               return lower(x) == lower(y);
           });
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
        s.remove_prefix(1);
    }
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
        s.remove_suffix(1);
    }
    return s;
}

// Control characters other than HTAB, and DEL. A CR or LF left inside a line after splitting on
// CRLF is a bare one: httplib splits lines on LF alone, so it would see other lines than we do.
bool has_control(std::string_view s) {
    return std::any_of(s.begin(), s.end(), [](char c) {
        const auto u = static_cast<unsigned char>(c);
        return (u < 0x20 && c != '\t') || u == 0x7f;
    });
}

std::optional<std::uint64_t> parse_decimal(std::string_view s) {
    if (s.empty() || s.size() > 18 ||
        !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        return std::nullopt;
    }
    std::uint64_t value = 0;
    std::from_chars(s.data(), s.data() + s.size(), value);
    return value;
}

}  // namespace

Result<GuardedRequestHead> guard_request_head(std::string_view head, std::size_t max_body) {
    if (head.size() > kMaxRequestHeadBytes) {
        return Error("request header section is larger than " +
                     std::to_string(kMaxRequestHeadBytes) + " bytes");
    }
    if (head.size() < 4 || head.substr(head.size() - 4) != "\r\n\r\n") {
        return Error("malformed HTTP request: the header section does not end with CRLF CRLF");
    }
    head.remove_suffix(2);  // the empty line; every line left ends with CRLF

    GuardedRequestHead out;
    out.head.reserve(head.size() + 32);
    std::optional<std::uint64_t> content_length;
    std::size_t fields = 0;
    bool request_line = true;
    while (!head.empty()) {
        const std::size_t end = head.find(kCrlf);
        const std::string_view line = head.substr(0, end);
        head.remove_prefix(end + kCrlf.size());
        if (has_control(line)) {
            return Error("malformed HTTP request: control character or bare CR/LF in the header");
        }
        if (request_line) {
            request_line = false;
            if (line.empty() || line.front() == ' ') {
                return Error("malformed HTTP request: bad request line");
            }
            out.head.append(line).append(kCrlf);
            continue;
        }
        if (++fields > kMaxRequestHeaderFields) {
            return Error("request has more than " + std::to_string(kMaxRequestHeaderFields) +
                         " header fields");
        }
        const std::size_t colon = line.find(':');
        const std::string_view name = line.substr(0, colon);
        if (colon == std::string_view::npos || name.empty() ||
            !std::all_of(name.begin(), name.end(), is_token_char)) {
            // Includes obs-fold (a line starting with whitespace) and "Name : value".
            return Error("malformed HTTP request: bad header field '" +
                         std::string(line.substr(0, 64)) + "'");
        }
        const std::string_view value = trim(line.substr(colon + 1));
        if (iequals(name, "Transfer-Encoding")) {
            return Error("Transfer-Encoding is not supported: send the body with Content-Length");
        }
        if (iequals(name, "Content-Encoding") && !iequals(value, "identity")) {
            return Error("Content-Encoding '" + std::string(value.substr(0, 32)) +
                         "' is not supported: send the body uncompressed");
        }
        if (iequals(name, "Range")) {
            continue;  // ignored, as Firecracker does; httplib's parser of it is unsafe
        }
        if (iequals(name, "Content-Length")) {
            const auto length = parse_decimal(value);
            if (!length) {
                return Error("malformed HTTP request: bad Content-Length '" +
                             std::string(value.substr(0, 32)) + "'");
            }
            if (content_length) {
                return Error("malformed HTTP request: more than one Content-Length");
            }
            if (*length > max_body) {
                return Error("request body is larger than the limit of " +
                             std::to_string(max_body) + " bytes");
            }
            content_length = length;
        }
        out.head.append(line).append(kCrlf);
    }
    if (request_line) {
        return Error("malformed HTTP request: no request line");
    }
    out.content_length = content_length.value_or(0);
    if (!content_length) {
        out.head.append("Content-Length: 0\r\n");
    }
    out.head.append(kCrlf);
    return out;
}

}  // namespace vireo
