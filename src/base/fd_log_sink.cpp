#include "base/fd_log_sink.h"

#include <spdlog/spdlog.h>

#include "base/file_open.h"

namespace vireo {

Result<std::shared_ptr<FdLogSink>> FdLogSink::open(const std::string& path) {
    auto fd = open_output_stream(path);
    if (!fd) {
        return fd.error().wrap("log path " + path);
    }
    return std::make_shared<FdLogSink>(std::move(fd).value());
}

void FdLogSink::sink_it_(const spdlog::details::log_msg& msg) {
    spdlog::memory_buf_t line;
    formatter_->format(msg, line);
    if (write_nonblocking(m_fd.get(), line.data(), line.size()) != line.size()) {
        m_missed.fetch_add(1, std::memory_order_relaxed);
    }
}

std::uint64_t missed_log_lines() {
    std::uint64_t missed = 0;
    for (const auto& sink : spdlog::default_logger()->sinks()) {
        if (const auto* fd_sink = dynamic_cast<const FdLogSink*>(sink.get())) {
            missed += fd_sink->missed();
        }
    }
    return missed;
}

}  // namespace vireo
