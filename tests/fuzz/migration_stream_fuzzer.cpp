// libFuzzer target: the live migration stream a destination receives (issue 14). The first byte
// picks the mode:
//  - even: the rest is one frame as it came off the socket (magic, command, flags, length cap,
//    CRC); whatever decodes must encode back to the same bytes;
//  - odd: the rest is a conversation: records of (u8 command, u16 length, payload) each wrapped
//    in a valid frame (so the fuzzer gets past the CRC) and fed, in order, to a receiver whose
//    target has 64 pages of RAM. Frames out of order, pages outside RAM, bad versions: nothing
//    may crash, and once the receiver has failed it takes nothing more. A MemoryFd frame comes
//    with a sealed 64-page memfd when the record's command byte has bit 7 set, alone otherwise.
#include <fcntl.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include "memory/guest_memory.h"
#include "migration/migration_frame.h"
#include "migration/migration_receiver.h"

namespace {

using namespace vireo;
using namespace vireo::migration;

void check(bool invariant) {
    if (!invariant) {
        __builtin_trap();
    }
}

const MemoryRegionSpec kSpec[] = {{GuestAddress{0}, 64 * kPageSize}};

// One sealed memfd for every run; each MemoryFd frame gets a duplicate.
int shared_memfd() {
    static GuestMemory ram =
        std::move(GuestMemory::create(kSpec, MemoryOptions{.memfd = true}).value());
    return ram.fd();
}

struct Target final : MigrationTarget {
    Result<GuestMemory*> prepare(const MigrationConfig& config, bool local) override {
        if (config.config_json == "refuse") {
            return Error("refused");
        }
        if (local) {
            return nullptr;
        }
        const MemoryRegionSpec spec[] = {{GuestAddress{0}, 64 * kPageSize}};
        auto m = GuestMemory::create(spec);
        if (!m) {
            return m.error();
        }
        memory.emplace(std::move(m).value());
        return &*memory;
    }
    Result<GuestMemory*> adopt(UniqueFd fd, std::uint64_t size) override {
        if (size != 64 * kPageSize) {
            return Error("wrong size");
        }
        auto m = GuestMemory::adopt_memfd(kSpec, std::move(fd));
        if (!m) {
            return m.error();
        }
        memory.emplace(std::move(m).value());
        return &*memory;
    }
    Result<void> finish(const SnapshotContents&) override { return ok(); }
    std::optional<GuestMemory> memory;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) {
        return 0;
    }
    const std::span<const std::uint8_t> rest(data + 1, size - 1);
    if ((data[0] & 1) == 0) {
        auto f = decode_frame(rest);
        if (f) {
            const auto again = encode_frame(f->command, f->payload);
            check(again.size() == rest.size() &&
                  std::memcmp(again.data(), rest.data(), rest.size()) == 0);
        }
        return 0;
    }
    Target target;
    MigrationReceiver rx(target);
    std::size_t at = 0;
    while (at + 3 <= rest.size()) {
        const std::uint16_t command = rest[at] & 0x7f;
        const bool with_fd = (rest[at] & 0x80) != 0;
        std::uint16_t len = 0;
        std::memcpy(&len, rest.data() + at + 1, 2);
        at += 3;
        len = static_cast<std::uint16_t>(std::min<std::size_t>(len, rest.size() - at));
        const auto payload = rest.subspan(at, len);
        at += len;
        const std::size_t cap = max_payload(command);
        if (cap == 0 && command != static_cast<std::uint16_t>(MigrationCommand::Complete) &&
            command != static_cast<std::uint16_t>(MigrationCommand::Commit)) {
            continue;  // not a command: the frame check refuses it (mode 0 covers that)
        }
        if (payload.size() > cap) {
            continue;
        }
        auto f = decode_frame(encode_frame(static_cast<MigrationCommand>(command), payload));
        check(f.ok());
        const bool was_failed = rx.phase() == MigrationReceiver::Phase::Failed;
        auto r = rx.on_frame(
            *f, with_fd ? UniqueFd(::fcntl(shared_memfd(), F_DUPFD_CLOEXEC, 0)) : UniqueFd());
        if (was_failed) {
            check(!r.ok());
        }
        if (!r) {
            check(rx.phase() == MigrationReceiver::Phase::Failed ||
                  rx.phase() == MigrationReceiver::Phase::Done);
        }
    }
    return 0;
}
