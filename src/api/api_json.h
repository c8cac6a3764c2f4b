// JSON for the API's response bodies and GET /vm/config, in Firecracker's field names. Optional
// fields that are absent are written as null, as Firecracker does, and every output reads back
// through the parsers (a GET /vm/config answer is a valid config file once it has a boot-source).
#pragma once

#include <string>

#include "api/api_response.h"
#include "api/api_types.h"

namespace vireo {

std::string to_json(const InstanceInfo& info);
std::string to_json(const FirecrackerVersion& version);
std::string to_json(const MigrationInfo& info);
std::string to_json(const MachineConfiguration& config);
std::string to_json(const VmConfig& config);
// GET /balloon (Firecracker's Balloon, free_page_hinting always false).
std::string to_json(const BalloonConfig& config);
// GET /balloon/statistics: the four figures of the device, then the guest's by name.
std::string to_json(const BalloonStats& stats);
std::string to_json(const Fault& fault);
// The body of `response`: one of the above, or "" for no body.
std::string response_body_json(const ApiResponse& response);

// "aa:bb:cc:dd:ee:ff", lowercase.
std::string format_guest_mac(const GuestMac& mac);

}  // namespace vireo
