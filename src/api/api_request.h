// What the API server hands the VMM: one typed request per call (answered with an ApiResponse,
// api_response.h). Path ids are already checked against the bodies (PUT /drives/{id} with another
// drive_id never gets here), so a request carries its id in its body struct.
#pragma once

#include <string>
#include <variant>

#include "api/api_types.h"

namespace vireo {

// Requests without a body.
struct GetInstanceInfo {  // GET /
    friend bool operator==(const GetInstanceInfo&, const GetInstanceInfo&) = default;
};
struct GetVersion {  // GET /version
    friend bool operator==(const GetVersion&, const GetVersion&) = default;
};
struct GetMachineConfig {  // GET /machine-config
    friend bool operator==(const GetMachineConfig&, const GetMachineConfig&) = default;
};
struct GetVmConfig {  // GET /vm/config
    friend bool operator==(const GetVmConfig&, const GetVmConfig&) = default;
};
struct GetBalloon {  // GET /balloon
    friend bool operator==(const GetBalloon&, const GetBalloon&) = default;
};
struct GetBalloonStats {  // GET /balloon/statistics
    friend bool operator==(const GetBalloonStats&, const GetBalloonStats&) = default;
};

// One alternative per endpoint; each body type appears once, so the type names the endpoint:
//   InstanceActionInfo         PUT /actions
//   BootSource                 PUT /boot-source
//   MachineConfiguration       PUT /machine-config
//   MachineConfigurationPatch  PATCH /machine-config
//   Drive                      PUT /drives/{drive_id}
//   PartialDrive               PATCH /drives/{drive_id}
//   NetworkInterface           PUT /network-interfaces/{iface_id}
//   PartialNetworkInterface    PATCH /network-interfaces/{iface_id}
//   VmState                    PATCH /vm
//   Logger                     PUT /logger
//   Metrics                    PUT /metrics
//   EntropyDevice              PUT /entropy
//   SnapshotCreateParams       PUT /snapshot/create
//   SnapshotLoadParams         PUT /snapshot/load
//   MigrationSendParams        PUT /migration/send      (vireo extension)
//   MigrationReceiveParams     PUT /migration/receive   (vireo extension)
//   MigrationCancel            PUT /migration/cancel    (vireo extension)
//   GetMigration               GET /migration           (vireo extension)
//   BalloonConfig              PUT /balloon
//   BalloonUpdate              PATCH /balloon
//   BalloonStatsUpdate         PATCH /balloon/statistics
using ApiRequest =
    std::variant<GetInstanceInfo, GetVersion, GetMachineConfig, GetVmConfig, InstanceActionInfo,
                 BootSource, MachineConfiguration, MachineConfigurationPatch, Drive, PartialDrive,
                 NetworkInterface, PartialNetworkInterface, VmState, Logger, Metrics, EntropyDevice,
                 SnapshotCreateParams, SnapshotLoadParams, MigrationSendParams,
                 MigrationReceiveParams, MigrationCancel, GetMigration, BalloonConfig,
                 BalloonUpdate, BalloonStatsUpdate, GetBalloon, GetBalloonStats>;

}  // namespace vireo
