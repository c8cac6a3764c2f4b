// Where the VMM's log goes: one setup for `--log-path` and `PUT /logger` alike. spdlog keeps its
// loggers in a registry by name; every path here replaces the default logger "vireo" as a whole,
// so a second setup (PUT /logger after --log-path) replaces the first instead of clashing with it.
#pragma once

#include <string>

#include <optional>
#include <string_view>

#include <spdlog/common.h>

#include "base/result.h"

namespace vireo {

// Sends the log to `path` (a regular file or a FIFO, never blocking: FdLogSink), keeping the
// current level, flushing at info and above, and tells the seccomp reporter to write its
// violation line there too. On error the log stays where it was.
Result<void> log_to_file(const std::string& path);

// The level names Firecracker's --level and PUT /logger use ("Error", "Warning", "Info",
// "Debug", "Trace", "Off"; any case), or spdlog's own ("warn", "critical"). nullopt for others.
std::optional<spdlog::level::level_enum> parse_log_level(std::string_view name);

}  // namespace vireo
