// libFuzzer target: kernel images are outside input (DESIGN.md §3). Whatever the bytes, loading
// must end in a LoadedKernel or an Error — never a crash, a hang or an out-of-bounds access.
#include <cstddef>
#include <cstdint>
#include <span>

#include "arch/x86_64/kernel_loader.h"

namespace {

vireo::GuestMemory& memory() {
    static vireo::GuestMemory mem = [] {
        const vireo::MemoryRegionSpec spec{vireo::GuestAddress(0), 64ULL << 20};
        return std::move(vireo::GuestMemory::create(std::span(&spec, 1))).value();
    }();
    return mem;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace vireo::loader;
    static const std::uint8_t initrd[4096] = {0x30, 0x37, 0x30, 0x37};
    BootConfig config;
    config.cmdline = "console=ttyS0";
    config.initrd = initrd;
    config.e820 = {{0, 0x9fc00, E820Type::Ram},
                   {0xe0000, 0x20000, E820Type::Reserved},
                   {0x100000, (64ULL << 20) - 0x100000, E820Type::Ram}};
    config.rsdp_address = 0xe0000;
    auto loaded = load_kernel(memory(), std::span(data, size), config);
    static_cast<void>(loaded);
    return 0;
}
