// libFuzzer target: the guard in front of cpp-httplib's request reader (http_request_head.h).
// Nothing may crash, and whatever passes must be what httplib can only read one way: within the
// limits, no Range, Transfer-Encoding or Content-Encoding (other than identity), no bare CR or LF,
// exactly one Content-Length no larger than the cap, ending with the empty line.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "api/http_request_head.h"

namespace {

void check(bool invariant) {
    if (!invariant) {
        __builtin_trap();
    }
}

std::string lower(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](char c) { return c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c; });
    return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    constexpr std::size_t kCap = 51200;
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    auto guarded = vireo::guard_request_head(input, kCap);
    if (!guarded) {
        check(!guarded.error().message().empty());
        return 0;
    }
    const std::string& head = guarded->head;
    check(head.size() >= 4 && head.compare(head.size() - 4, 4, "\r\n\r\n") == 0);
    check(head.find("\r\n\r\n") == head.size() - 4);
    check(guarded->content_length <= kCap);
    std::size_t lengths = 0;
    std::size_t fields = 0;
    std::string_view rest(head);
    rest.remove_suffix(2);
    bool first = true;
    while (!rest.empty()) {
        const std::size_t end = rest.find("\r\n");
        check(end != std::string_view::npos);
        const std::string_view line = rest.substr(0, end);
        rest.remove_prefix(end + 2);
        check(line.find('\r') == std::string_view::npos &&
              line.find('\n') == std::string_view::npos);
        if (first) {
            first = false;
            continue;
        }
        ++fields;
        const std::string name = lower(line.substr(0, line.find(':')));
        check(name != "range" && name != "transfer-encoding");
        check(name.find(' ') == std::string::npos && name.find('\t') == std::string::npos);
        lengths += name == "content-length";
    }
    check(lengths == 1);
    check(fields <= vireo::kMaxRequestHeaderFields + 1);  // + the Content-Length it may add
    return 0;
}
