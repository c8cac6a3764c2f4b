// libFuzzer target: the snapshot state file (DESIGN.md §3). The first byte picks the mode:
//  - even: the rest is the file, as read from disk (magic, version, length, CRC checks);
//  - odd: the rest is the body, wrapped in a valid container (magic, version, length and CRC
//    fixed up) so that the fuzzer gets past the checksum to the body's decoder.
// Nothing may crash, and whatever decodes must encode back to the same bytes (the encoding is
// canonical: nothing the decoder accepts is lost or normalized).
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include "base/crc64.h"
#include "snapshot/snapshot_file.h"

namespace {

using namespace vireo;

void check(bool invariant) {
    if (!invariant) {
        __builtin_trap();
    }
}

std::vector<std::uint8_t> wrap(std::span<const std::uint8_t> body) {
    const std::uint32_t version = kSnapshotFormatVersion;
    const std::uint64_t total = 8 + 4 + 8 + body.size() + 8;
    std::vector<std::uint8_t> file;
    file.reserve(total);
    auto append = [&file](const void* p, std::size_t n) {
        const auto* bytes = static_cast<const std::uint8_t*>(p);
        file.insert(file.end(), bytes, bytes + n);
    };
    append("VIREOSNP", 8);
    append(&version, sizeof(version));
    append(&total, sizeof(total));
    append(body.data(), body.size());
    const std::uint64_t crc = Crc64::of(file);
    append(&crc, sizeof(crc));
    return file;
}

void decode_and_check(std::span<const std::uint8_t> file) {
    auto decoded = decode_snapshot(file);
    if (!decoded) {
        check(!decoded.error().message().empty());
        return;
    }
    const auto again = encode_snapshot(*decoded);
    check(again.size() == file.size() && std::memcmp(again.data(), file.data(), file.size()) == 0);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) {
        return 0;
    }
    const std::span<const std::uint8_t> rest(data + 1, size - 1);
    if (data[0] % 2 == 0) {
        decode_and_check(rest);
    } else {
        decode_and_check(wrap(rest));
    }
    return 0;
}
