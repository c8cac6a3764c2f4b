// The VMM controller's record of one live migration (vmm_migration.cpp): its thread and either
// side's state. Shared by vmm_controller.cpp, which owns it, and vmm_migration.cpp.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "base/event_fd.h"
#include "migration/migration_channel.h"
#include "migration/migration_sender.h"
#include "vmm/vmm_controller.h"

namespace vireo {

struct VmmController::Migration {
    std::thread thread;
    std::atomic<bool> running{false};  // the thread has not finished
    // Send side.
    std::unique_ptr<MigrationSourceAdapter> source;
    std::unique_ptr<migration::MigrationSender> sender;
    // Receive side: its own progress and stop event (the sender keeps its own).
    std::optional<EventFd> stop;
    std::atomic<bool> cancelled{false};
    mutable std::mutex mutex;
    migration::MigrationProgress progress;  // receive side, guarded by mutex
    std::unique_ptr<MigrationTargetAdapter> target;
    bool local_only = false;                     // PUT /migration/receive "local": refuse a copy
    migration::FrameChannel* channel = nullptr;  // receive side, while connected (for bytes)

    ~Migration();
};

}  // namespace vireo
