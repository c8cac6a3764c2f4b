// Constants from the virtio specification (Virtual I/O Device Version 1.2, OASIS), by section.
#pragma once

#include <cstdint>

namespace vireo::virtio {

// §2.1 Device status field.
inline constexpr std::uint8_t kStatusAcknowledge = 1;
inline constexpr std::uint8_t kStatusDriver = 2;
inline constexpr std::uint8_t kStatusDriverOk = 4;
inline constexpr std::uint8_t kStatusFeaturesOk = 8;
inline constexpr std::uint8_t kStatusDeviceNeedsReset = 64;
inline constexpr std::uint8_t kStatusFailed = 128;

// §6 Reserved feature bits.
inline constexpr unsigned kFeatureIndirectDesc = 28;
inline constexpr unsigned kFeatureEventIdx = 29;
inline constexpr unsigned kFeatureVersion1 = 32;
inline constexpr unsigned kFeatureAccessPlatform = 33;

constexpr std::uint64_t feature(unsigned bit) {
    return std::uint64_t{1} << bit;
}

// §5 Device IDs.
inline constexpr std::uint16_t kDeviceNet = 1;
inline constexpr std::uint16_t kDeviceBlock = 2;
inline constexpr std::uint16_t kDeviceConsole = 3;
inline constexpr std::uint16_t kDeviceEntropy = 4;
inline constexpr std::uint16_t kDeviceBalloon = 5;

// §2.7.5 Split virtqueue descriptor flags.
inline constexpr std::uint16_t kDescNext = 1;
inline constexpr std::uint16_t kDescWrite = 2;
inline constexpr std::uint16_t kDescIndirect = 4;

// §2.7.6 / §2.7.8 ring flags.
inline constexpr std::uint16_t kAvailNoInterrupt = 1;
inline constexpr std::uint16_t kUsedNoNotify = 1;

// §4.1.4.3: MSI-X "no vector".
inline constexpr std::uint16_t kNoVector = 0xffff;

// Largest queue vireo offers (a power of two, §2.7: at most 32768).
inline constexpr std::uint16_t kMaxQueueSize = 256;

}  // namespace vireo::virtio
