// libFuzzer target: the virtio-pci transport and a device behind it, driven the way a hostile
// driver would: any register of the common configuration, ISR, notify area, device config and PCI
// config space, at any width, in any order - status transitions included (DRIVER_OK cleared
// without a reset, queue fields rewritten after enable, size 0, DRIVER_OK twice) - interleaved
// with writes of ring contents into guest memory, kicks, and the VMM's pause/resume and
// snapshot, while the device thread (virtio-rng, or virtio-blk on a small file) serves the rings.
// Nothing may crash, touch memory outside guest RAM or hang (the sanitizers and libFuzzer's
// timeout watch). Input: the first byte picks the device, then records:
//
//   op 0  bar write    u16 offset, u8 width (1/2/4/8), u64 value
//   op 1  bar read     u16 offset, u8 width
//   op 2  config write u8 offset, u8 width (1/2/4), u32 value
//   op 3  memory write u16 address, u8 length, bytes (ring contents, descriptors, requests)
//   op 4  kick         u8 queue
//   op 5  pause, op 6 resume (the VMM's), op 7 save_state (must work in any state)
//   op 8  let the device thread run for a moment
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <span>
#include <thread>

#include "backends/block/block_file.h"
#include "base/state_archive.h"
#include "devices/virtio/virtio_blk.h"
#include "devices/virtio/virtio_pci_device.h"
#include "devices/virtio/virtio_rng.h"

namespace {

using namespace vireo;
using namespace vireo::virtio;

class NullRoute final : public MsiRoute {
public:
    Result<void> set_message(const MsiMessage&) override { return ok(); }
    void trigger() override {}
};

class NullMsi final : public MsiController {
public:
    Result<std::unique_ptr<MsiRoute>> create_msi_route() override {
        return std::unique_ptr<MsiRoute>(std::make_unique<NullRoute>());
    }
};

class NullLine final : public IrqLine {
public:
    void set_level(bool) override {}
};

constexpr std::uint64_t kRamSize = 64 * 1024;
constexpr std::uint64_t kBar = 0xc0000000;

// The input as a stream; reads past its end give zeros.
class Reader {
public:
    Reader(const std::uint8_t* data, std::size_t size) : m_data(data), m_size(size) {}
    bool done() const { return m_at >= m_size; }
    template <typename T>
    T get() {
        T v{};
        const std::size_t n = std::min(sizeof(T), m_size - std::min(m_at, m_size));
        std::memcpy(&v, m_data + m_at, n);
        m_at += sizeof(T);
        return v;
    }
    std::span<const std::uint8_t> bytes(std::size_t n) {
        const std::size_t start = std::min(m_at, m_size);
        const std::size_t len = std::min(n, m_size - start);
        m_at += n;
        return {m_data + start, len};
    }

private:
    const std::uint8_t* m_data;
    std::size_t m_size;
    std::size_t m_at = 0;
};

std::unique_ptr<VirtioDevice> make_device(std::uint8_t which) {
    if ((which & 1) == 0) {
        return std::make_unique<VirtioRng>();
    }
    // A 64 KiB image in /tmp, made once; requests beyond it are refused by the device.
    static const std::string path = [] {
        char name[] = "/tmp/vireo-virtio-pci-fuzz-XXXXXX";
        const int fd = ::mkstemp(name);
        if (fd >= 0) {
            if (::ftruncate(fd, 64 * 1024) != 0) {
                __builtin_trap();
            }
            ::close(fd);
            static char unlink_at_exit[sizeof name];
            std::memcpy(unlink_at_exit, name, sizeof name);
            std::atexit([] { ::unlink(unlink_at_exit); });
        }
        return std::string(name);
    }();
    auto file = BlockFile::open(path, {.read_only = (which & 2) != 0, .lock = false});
    if (!file) {
        return nullptr;
    }
    auto blk = VirtioBlk::create(std::move(file.value()), "fuzz", "vda", 1 + (which >> 2) % 2);
    return blk ? std::move(blk.value()) : nullptr;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1) {
        return 0;
    }
    static GuestMemory* mem = [] {
        std::array<MemoryRegionSpec, 1> spec{{{GuestAddress{0}, kRamSize}}};
        return new GuestMemory(std::move(GuestMemory::create(spec).value()));
    }();
    std::array<std::uint8_t, 4096> zero{};
    for (std::uint64_t a = 0; a < kRamSize; a += zero.size()) {
        static_cast<void>(mem->write(GuestAddress{a}, zero));
    }
    Reader in(data, size);
    auto device = make_device(in.get<std::uint8_t>());
    if (!device) {
        return 0;
    }
    NullMsi msi;
    NullLine line;
    auto created = VirtioPciDevice::create(std::move(device), *mem, msi, nullptr, &line);
    if (!created) {
        return 0;
    }
    VirtioPciDevice& dev = *created.value();
    if (!dev.config_space().set_bar_address(0, kBar)) {
        return 0;
    }
    const std::uint16_t command = 0x0006;
    dev.config_write(0x04, std::span(reinterpret_cast<const std::uint8_t*>(&command), 2));

    for (int ops = 0; !in.done() && ops < 512; ++ops) {
        switch (in.get<std::uint8_t>() % 9) {
            case 0: {
                const auto offset = in.get<std::uint16_t>() % VirtioPciDevice::kBarSize;
                const std::size_t width = std::size_t{1} << (in.get<std::uint8_t>() % 4);
                const auto value = in.get<std::uint64_t>();
                dev.bar_write(0, offset,
                              std::span(reinterpret_cast<const std::uint8_t*>(&value), width));
                break;
            }
            case 1: {
                const auto offset = in.get<std::uint16_t>() % VirtioPciDevice::kBarSize;
                const std::size_t width = std::size_t{1} << (in.get<std::uint8_t>() % 4);
                std::uint64_t value = 0;
                dev.bar_read(0, offset, std::span(reinterpret_cast<std::uint8_t*>(&value), width));
                break;
            }
            case 2: {
                const auto offset = in.get<std::uint8_t>();
                const std::size_t width = std::size_t{1} << (in.get<std::uint8_t>() % 3);
                const auto value = in.get<std::uint32_t>();
                if (offset + width <= 256) {
                    dev.config_write(
                        offset, std::span(reinterpret_cast<const std::uint8_t*>(&value), width));
                }
                break;
            }
            case 3: {
                const auto address = in.get<std::uint16_t>();
                const auto bytes = in.bytes(in.get<std::uint8_t>());
                static_cast<void>(mem->write(GuestAddress{address}, bytes));
                break;
            }
            case 4: {
                const std::uint16_t queue = in.get<std::uint8_t>() % 4;
                const std::uint16_t value = queue;
                dev.bar_write(0, 0x3000 + 4ULL * queue,
                              std::span(reinterpret_cast<const std::uint8_t*>(&value), 2));
                break;
            }
            case 5:
                dev.pause();
                break;
            case 6:
                dev.resume();
                break;
            case 7:
                dev.pause();
                static_cast<void>(save_to_bytes(dev.save_state()));
                dev.resume();
                break;
            case 8:
                std::this_thread::sleep_for(std::chrono::microseconds(200));
                break;
        }
    }
    // Destruction resets the device and stops its thread.
    return 0;
}
