// libFuzzer target: the snapshot state file (DESIGN.md §3). The first byte picks the mode:
//  - 0 mod 3: the rest is the file, as read from disk (magic, version, length, CRC checks);
//  - 1 mod 3: the rest is the body, wrapped in a valid container (magic, version, length and CRC
//    fixed up) so that the fuzzer gets past the checksum to the body's decoder;
//  - 2 mod 3: the rest is one section's bytes, decoded as every component state (each cap and
//    bound of persist()), and where a legacy device's state decodes, restored into that device
//    (restore_state clamps what a hostile file could put there).
// Nothing may crash, and whatever decodes must encode back to the same bytes (the encoding is
// canonical: nothing the decoder accepts is lost or normalized).
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include "accel/accel_state.h"
#include "base/crc64.h"
#include "base/state_archive.h"
#include "devices/legacy/cmos_rtc.h"
#include "devices/legacy/i8042.h"
#include "devices/legacy/serial8250.h"
#include "devices/pci/pci_root.h"
#include "devices/virtio/virtio_pci_device.h"
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

struct NullLine final : IrqLine {
    void set_level(bool) override {}
};

template <typename T>
void round_trip(std::span<const std::uint8_t> bytes) {
    auto state = load_from_bytes<T>(bytes);
    if (!state) {
        return;
    }
    // What decodes encodes back to the same bytes.
    const auto again = save_to_bytes(*state);
    check(again.size() == bytes.size() &&
          std::memcmp(again.data(), bytes.data(), bytes.size()) == 0);
}

void decode_sections(std::span<const std::uint8_t> bytes) {
    round_trip<VcpuState>(bytes);
    round_trip<VmPlatformState>(bytes);
    round_trip<virtio::VirtioPciState>(bytes);
    round_trip<PciRootState>(bytes);
    round_trip<CmosRtcState>(bytes);
    round_trip<Serial8250State>(bytes);
    round_trip<I8042State>(bytes);
    static NullLine line;
    if (auto s = load_from_bytes<I8042State>(bytes)) {
        I8042 dev(line, [] {});
        dev.restore_state(*s);
        std::uint8_t b = 0;
        dev.read(0, std::span(&b, 1));
        dev.read(4, std::span(&b, 1));
    }
    if (auto s = load_from_bytes<Serial8250State>(bytes)) {
        Serial8250 dev(line, [](std::span<const std::uint8_t>) {});
        dev.restore_state(*s);
        std::uint8_t b = 0;
        for (std::uint64_t off = 0; off < Serial8250::kPorts; ++off) {
            dev.read(off, std::span(&b, 1));
        }
    }
    if (auto s = load_from_bytes<CmosRtcState>(bytes)) {
        CmosRtc dev(64 << 20, 0, [] { return std::time_t{0}; });
        dev.restore_state(*s);
        std::uint8_t b = 0;
        dev.read(1, std::span(&b, 1));
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) {
        return 0;
    }
    const std::span<const std::uint8_t> rest(data + 1, size - 1);
    switch (data[0] % 3) {
        case 0:
            decode_and_check(rest);
            break;
        case 1:
            decode_and_check(wrap(rest));
            break;
        default:
            decode_sections(rest);
            break;
    }
    return 0;
}
