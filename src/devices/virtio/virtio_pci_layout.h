// Where the virtio-pci transport puts things (virtio 1.2 §4.1): its PCI identity, the regions of
// BAR 0 and the fields of the common configuration structure. Private to the transport's files.
#pragma once

#include <cstddef>
#include <cstdint>

namespace vireo::virtio::pci_layout {

// §4.1.2 PCI device discovery.
inline constexpr std::uint16_t kVendorId = 0x1af4;
inline constexpr std::uint16_t kModernDeviceIdBase = 0x1040;
inline constexpr std::uint16_t kSubsystemId = 0x1100;

// §4.1.4 virtio structure PCI capability cfg_type values.
inline constexpr std::uint8_t kCapCommonCfg = 1;
inline constexpr std::uint8_t kCapNotifyCfg = 2;
inline constexpr std::uint8_t kCapIsrCfg = 3;
inline constexpr std::uint8_t kCapDeviceCfg = 4;
inline constexpr std::uint8_t kCapPciCfg = 5;

inline constexpr std::uint64_t kCommonOffset = 0x0000;
inline constexpr std::uint64_t kCommonSize = 0x40;
inline constexpr std::uint64_t kIsrOffset = 0x1000;
inline constexpr std::uint64_t kDeviceCfgOffset = 0x2000;
inline constexpr std::uint64_t kDeviceCfgMax = 0x1000;
inline constexpr std::uint64_t kNotifyOffset = 0x3000;
inline constexpr std::uint32_t kNotifyMultiplier = 4;
inline constexpr std::uint32_t kMsixTableOffset = 0x4000;
inline constexpr std::uint32_t kMsixPbaOffset = 0x6000;
inline constexpr std::size_t kMaxQueues = (kMsixPbaOffset - kMsixTableOffset) / 16 - 1;

// §4.1.4.3 struct virtio_pci_common_cfg field offsets.
inline constexpr std::uint64_t kDeviceFeatureSelect = 0x00;
inline constexpr std::uint64_t kDeviceFeature = 0x04;
inline constexpr std::uint64_t kDriverFeatureSelect = 0x08;
inline constexpr std::uint64_t kDriverFeature = 0x0c;
inline constexpr std::uint64_t kConfigMsixVector = 0x10;
inline constexpr std::uint64_t kNumQueues = 0x12;
inline constexpr std::uint64_t kDeviceStatus = 0x14;
inline constexpr std::uint64_t kConfigGeneration = 0x15;
inline constexpr std::uint64_t kQueueSelect = 0x16;
inline constexpr std::uint64_t kQueueSize = 0x18;
inline constexpr std::uint64_t kQueueMsixVector = 0x1a;
inline constexpr std::uint64_t kQueueEnable = 0x1c;
inline constexpr std::uint64_t kQueueNotifyOff = 0x1e;
inline constexpr std::uint64_t kQueueDesc = 0x20;
inline constexpr std::uint64_t kQueueDriver = 0x28;
inline constexpr std::uint64_t kQueueDevice = 0x30;
inline constexpr std::uint64_t kQueueNotifyData = 0x38;
inline constexpr std::uint64_t kQueueReset = 0x3a;

// ISR bits (§4.1.4.5).
inline constexpr std::uint8_t kIsrQueue = 1;
inline constexpr std::uint8_t kIsrConfig = 2;

}  // namespace vireo::virtio::pci_layout
