// The guard in front of cpp-httplib's request reader (api_http_server.h): checks one request head
// (request line and header fields, up to and including the empty line) against strict limits and
// rewrites it so httplib's parser sees only what it handles safely.
//
// Why: cpp-httplib 0.11 (Debian 12) parses Range with a recursive std::regex (an 8 KB header
// overflows a 1 MiB thread stack), reads chunked and length-less bodies without the body cap,
// inflates gzip/deflate/brotli bodies without limit, and bounds neither the number of header
// fields nor a line before it ends. The guard keeps the head within kMaxRequestHeadBytes and
// kMaxRequestHeaderFields, refuses what would be framed or decoded differently by two readers
// (bare CR or LF, obs-fold, whitespace before the colon, Transfer-Encoding, Content-Encoding,
// several or non-numeric Content-Length), drops Range (ignored, as Firecracker does) and gives
// every request an explicit Content-Length, so httplib reads exactly that many body bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/result.h"

namespace vireo {

inline constexpr std::size_t kMaxRequestHeadBytes = 16 * 1024;
inline constexpr std::size_t kMaxRequestHeaderFields = 64;

struct GuardedRequestHead {
    // The head to hand to httplib: same request line and fields, Range removed, Content-Length
    // present; ends with the empty line.
    std::string head;
    // Body bytes that follow the head (0 when the client sent no Content-Length).
    std::uint64_t content_length = 0;
};

// `head` is everything up to and including the first "\r\n\r\n". Errors are meant for the
// client's fault_message. `max_body` is the body cap (kApiMaxBodySize).
Result<GuardedRequestHead> guard_request_head(std::string_view head, std::size_t max_body);

}  // namespace vireo
