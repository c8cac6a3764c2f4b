// TimeAccount: adds the time between its construction and its destruction to a running total,
// whichever way the scope is left (the migration's phases: socket, checksums, RAM).
#pragma once

#include <chrono>

namespace vireo {

class TimeAccount {
public:
    explicit TimeAccount(std::chrono::nanoseconds& total)
        : m_total(total), m_start(std::chrono::steady_clock::now()) {}
    ~TimeAccount() { m_total += std::chrono::steady_clock::now() - m_start; }
    TimeAccount(const TimeAccount&) = delete;
    TimeAccount& operator=(const TimeAccount&) = delete;

private:
    std::chrono::nanoseconds& m_total;
    std::chrono::steady_clock::time_point m_start;
};

}  // namespace vireo
