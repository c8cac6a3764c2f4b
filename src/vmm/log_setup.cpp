#include "vmm/log_setup.h"

#include <algorithm>
#include <cctype>

#include <spdlog/spdlog.h>

#include "base/fd_log_sink.h"
#include "seccomp/seccomp.h"

namespace vireo {

Result<void> log_to_file(const std::string& path) {
    auto sink = FdLogSink::open(path);
    if (!sink) {
        return sink.error();
    }
    auto logger = std::make_shared<spdlog::logger>("vireo", std::move(sink).value());
    logger->set_level(spdlog::default_logger()->level());
    // Replaces the registry's previous default (and its name) in one step.
    spdlog::set_default_logger(std::move(logger));
    spdlog::flush_on(spdlog::level::info);
    seccomp::report_to_log_file(path);
    return ok();
}

std::optional<spdlog::level::level_enum> parse_log_level(std::string_view name) {
    std::string lower(name);
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    // spdlog's names are "trace", "debug", "info", "warning", "error", "critical", "off".
    if (lower == "warn") {
        lower = "warning";
    }
    for (int l = spdlog::level::trace; l <= spdlog::level::off; ++l) {
        const auto level = static_cast<spdlog::level::level_enum>(l);
        if (spdlog::level::to_string_view(level) == lower) {
            return level;
        }
    }
    return std::nullopt;
}

}  // namespace vireo
