// Checks the VMM's request handlers share (vmm_controller.cpp, vmm_devices.cpp).
#pragma once

#include <optional>
#include <string>

#include "api/api_types.h"

namespace vireo {

const char* state_name(InstanceState s);
// "WHAT is not allowed while the VM is 'STATE'".
std::string not_allowed(const char* what, InstanceState s);
// A regular file or a block device (a drive's image).
bool regular_file(const std::string& path);
// Why `path` cannot be read as a kernel or initrd (a regular file, or a block device when
// `block_ok`); nullopt when it can. stat() only: nothing is opened.
std::optional<std::string> not_a_file(const std::string& path, bool block_ok);

}  // namespace vireo
