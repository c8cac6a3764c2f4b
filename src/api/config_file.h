// Firecracker's --config-file: one JSON object whose sections are the bodies of the pre-boot
// requests ("boot-source", "drives", "machine-config", "network-interfaces", "logger",
// "metrics", "entropy", "balloon"), each validated exactly like its request (section_readers.h).
// Sections vireo does not support yet ("vsock", "mmds-config", ...) are refused with a message
// saying so unless null; unknown sections are errors.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "api/api_types.h"
#include "base/result.h"

namespace vireo {

// A config file lists a handful of devices; 1 MiB is far beyond any real one.
inline constexpr std::size_t kMaxConfigFileSize = std::size_t{1} << 20;

// Beyond each section's rules: "boot-source" is required, drive ids, interface ids, tap names and
// guest MACs are unique, at most one drive is the root device, and the balloon's target is no
// more than machine-config's memory.
Result<VmConfig> parse_config_file(std::string_view text);
// Reads `path` (at most kMaxConfigFileSize bytes) and parses it; errors name the file.
Result<VmConfig> load_config_file(const std::string& path);

}  // namespace vireo
