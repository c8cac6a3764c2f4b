// Test doubles for a virtio-pci function's platform: MSI routes, the ioeventfd registry and an
// INTx line, recording what the transport asked of them.
#pragma once

#include <atomic>
#include <memory>
#include <utility>
#include <vector>

#include "bus/io_event.h"
#include "devices/pci/msix.h"
#include "irq/irq_line.h"

namespace vireo::virtio {

struct FakeRoute final : MsiRoute {
    Result<void> set_message(const MsiMessage& m) override {
        message = m;
        return ok();
    }
    void trigger() override { ++triggers; }
    MsiMessage message;
    std::atomic<int> triggers{0};
};

struct FakeMsi final : MsiController {
    Result<std::unique_ptr<MsiRoute>> create_msi_route() override {
        auto r = std::make_unique<FakeRoute>();
        routes.push_back(r.get());
        return std::unique_ptr<MsiRoute>(std::move(r));
    }
    std::vector<FakeRoute*> routes;
};

struct FakeIoEvents final : IoEventRegistry {
    Result<void> add_ioevent(const IoEventAddress& where, int fd) override {
        added.push_back({where, fd});
        return ok();
    }
    Result<void> remove_ioevent(const IoEventAddress& where, int fd) override {
        removed.push_back({where, fd});
        return ok();
    }
    std::vector<std::pair<IoEventAddress, int>> added, removed;
};

struct FakeLine final : IrqLine {
    void set_level(bool high) override { level = high; }
    std::atomic<bool> level{false};
};

}  // namespace vireo::virtio
