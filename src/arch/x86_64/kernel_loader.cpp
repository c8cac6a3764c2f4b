#include "arch/x86_64/kernel_loader.h"

#include <cstring>

#include "arch/x86_64/boot_params.h"
#include "arch/x86_64/byte_reader.h"
#include "arch/x86_64/elf64.h"
#include "arch/x86_64/elf_image.h"

namespace vireo::loader {

Result<KernelFormat> detect_kernel_format(std::span<const std::uint8_t> image) {
    const bool multiboot = find_multiboot_header(image).has_value();
    if (image.size() >= sizeof(kElfMagic) &&
        std::memcmp(image.data(), kElfMagic, sizeof(kElfMagic)) == 0) {
        // A vmlinux with a PVH note boots by PVH even if it also has a multiboot header (as
        // QEMU chooses); an ELF without the note boots by multiboot if it has the header.
        if (multiboot && !ElfImage::parse(image)) {
            return KernelFormat::Multiboot;
        }
        return KernelFormat::ElfPvh;
    }
    if (read_at<std::uint16_t>(image, 0x1fe) == kBootFlagMagic &&
        read_at<std::uint32_t>(image, 0x202) == kHdrSMagic) {
        return KernelFormat::BzImage;
    }
    if (multiboot) {
        return KernelFormat::Multiboot;
    }
    return Error("kernel: not a bzImage, an ELF vmlinux or a multiboot image");
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
        case KernelFormat::Multiboot:
            return load_multiboot(mem, image, config);
    }
    return Error("kernel: unknown format");
}

}  // namespace vireo::loader
