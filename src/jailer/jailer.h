// vireo-jailer's order of operations, as Firecracker's jailer (docs/jailer.md, "Jailer
// Operation"):
//   close inherited descriptors above 2, clear the environment; check every input (creating
//   nothing: the exec file, the chroot base, the instance folder, the network namespace, the
//   cgroup controllers, the exec file's shared libraries); create <base>/<exec>/<id>/root and
//   copy the exec file (and its libraries) in; join the network namespace; set the resource
//   limits; create the cgroup, write its values and move in; unshare the mount namespace and
//   pivot_root into the jail; create /dev, /dev/net, /run and the device nodes owned by uid:gid;
//   daemonize; fork into a new PID namespace (the parent writes the child's pid to
//   /<exec>.pid); drop to uid:gid; exec /<exec> --id <id> <args after -->.
// A failure before pivot_root removes what was created; the exit status is then 1.
#pragma once

#include "jailer/jailer_options.h"

namespace vireo::jailer {

// Returns only on failure (the exec replaced the process otherwise): the exit status.
int run_jailer(const JailerConfig& config);

}  // namespace vireo::jailer
