// libFuzzer target: the API's request bodies and the config file (DESIGN.md §3). The first byte
// picks the parser, the rest is the body. Nothing may crash, and whatever parses must survive a
// round trip through the serializer (GET /vm/config's answer reads back as the same config).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "api/api_json.h"
#include "api/api_parser.h"
#include "api/api_router.h"
#include "api/config_file.h"

namespace {

using namespace vireo;

void check(bool invariant) {
    if (!invariant) {
        __builtin_trap();
    }
}

// "METHOD\nPATH\nBODY": the router with its hostile method and path too.
void route(std::string_view input) {
    auto first = input.find('\n');
    auto method = input.substr(0, first);
    input = first == std::string_view::npos ? std::string_view{} : input.substr(first + 1);
    auto second = input.find('\n');
    auto path = input.substr(0, second);
    auto body = second == std::string_view::npos ? std::string_view{} : input.substr(second + 1);
    auto routed = route_api_request(method, path, body);
    if (auto* response = std::get_if<ApiResponse>(&routed.result)) {
        check(response->status == 400);
        check(!response_body_json(*response).empty());
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) {
        return 0;
    }
    const std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);
    switch (data[0] % 17) {
        case 0:
            (void)parse_instance_action_info(body);
            break;
        case 1:
            (void)parse_boot_source(body);
            break;
        case 2:
            if (auto m = parse_machine_configuration(body)) {
                auto again = parse_machine_configuration(to_json(*m));
                check(again && *again == *m);
            }
            break;
        case 3:
            if (auto p = parse_machine_configuration_patch(body)) {
                (void)apply_machine_configuration_patch(MachineConfiguration{}, *p);
            }
            break;
        case 4:
            (void)parse_drive(body, "rootfs");
            break;
        case 5:
            (void)parse_partial_drive(body, "rootfs");
            break;
        case 6:
            (void)parse_network_interface(body, "eth0");
            break;
        case 7:
            (void)parse_partial_network_interface(body, "eth0");
            break;
        case 8:
            (void)parse_vm_state(body);
            break;
        case 9:
            (void)parse_logger(body);
            break;
        case 10:
            (void)parse_metrics(body);
            break;
        case 11:
            (void)parse_entropy_device(body);
            break;
        case 12:
            if (auto c = parse_config_file(body)) {
                auto again = parse_config_file(to_json(*c));
                check(again && *again == *c);
            }
            break;
        case 13:
            route(body);
            break;
        case 15:
            (void)parse_snapshot_create_params(body);
            break;
        case 16:
            (void)parse_snapshot_load_params(body);
            break;
        default:
            (void)parse_guest_mac(body);
            break;
    }
    return 0;
}
