#include "arch/x86_64/kernel_loader.h"

#include <cstring>

#include "arch/x86_64/boot_params.h"
#include "arch/x86_64/byte_reader.h"
#include "arch/x86_64/elf64.h"

namespace vireo::loader {

Result<KernelFormat> detect_kernel_format(std::span<const std::uint8_t> image) {
    if (image.size() >= sizeof(kElfMagic) &&
        std::memcmp(image.data(), kElfMagic, sizeof(kElfMagic)) == 0) {
        return KernelFormat::ElfPvh;
    }
    if (read_at<std::uint16_t>(image, 0x1fe) == kBootFlagMagic &&
        read_at<std::uint32_t>(image, 0x202) == kHdrSMagic) {
        return KernelFormat::BzImage;
    }
    return Error("kernel: not a bzImage or an ELF vmlinux");
}

Result<LoadedKernel> load_kernel(GuestMemory& mem, std::span<const std::uint8_t> image,
                                 const BootConfig& config) {
    auto format = detect_kernel_format(image);
    if (!format) {
        return format.error();
    }
    switch (*format) {
        case KernelFormat::BzImage:
            return load_bzimage(mem, image, config);
        case KernelFormat::ElfPvh:
            return load_elf_pvh(mem, image, config);
    }
    return Error("kernel: unknown format");
}

}  // namespace vireo::loader
