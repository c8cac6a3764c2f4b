// The VM generation ID as Linux's vmgenid driver sees it: 16 bytes at the address the DSDT's ADDR
// method returns, a new value and one edge on the GED line per regenerate(), state round-trip.
#include "devices/platform/vm_gen_id.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <optional>
#include <vector>

#include <gtest/gtest.h>

#include "acpi/acpi_tables.h"

namespace vireo {
namespace {

using Id = std::array<std::uint8_t, 16>;

struct RecordingIrq final : IrqLine {
    bool level = false;
    int rises = 0;
    void set_level(bool high) override {
        if (high && !level) {
            ++rises;
        }
        level = high;
    }
};

// Bytes 0x01, 0x02, ... across calls: every ID differs from the one before.
struct CountingRandom {
    std::uint8_t next = 1;
    bool fail = false;
    Result<void> operator()(std::span<std::uint8_t> out) {
        if (fail) {
            return Error("no entropy");
        }
        for (auto& b : out) {
            b = next++;
        }
        return ok();
    }
};

constexpr std::uint64_t kAddress = 0xEF000;

class VmGenIdTest : public ::testing::Test {
protected:
    VmGenIdTest() {
        const MemoryRegionSpec spec[] = {{GuestAddress(0), 1 << 20}};
        mem.emplace(std::move(GuestMemory::create(spec)).value());
    }

    std::unique_ptr<VmGenId> make(bool host_random = false) {
        VmGenId::RandomSource source;
        if (!host_random) {
            source = [this](std::span<std::uint8_t> out) { return random(out); };
        }
        auto dev = VmGenId::create(*mem, GuestAddress(kAddress), irq, source);
        EXPECT_TRUE(dev.ok()) << (dev.ok() ? "" : dev.error().message());
        return dev.ok() ? std::move(dev).value() : nullptr;
    }

    Id guest_id(std::uint64_t at = kAddress) const {
        Id id{};
        EXPECT_TRUE(mem->read(GuestAddress(at), id).ok());
        return id;
    }

    std::optional<GuestMemory> mem;
    RecordingIrq irq;
    CountingRandom random;
};

TEST_F(VmGenIdTest, CreateWritesTheFirstIdWithoutAnInterrupt) {
    auto dev = make();
    ASSERT_TRUE(dev);
    Id expected{};
    for (std::size_t i = 0; i < expected.size(); ++i) {
        expected[i] = static_cast<std::uint8_t>(i + 1);
    }
    EXPECT_EQ(dev->generation_id(), expected);
    EXPECT_EQ(guest_id(), expected);
    EXPECT_EQ(dev->address(), GuestAddress(kAddress));
    EXPECT_EQ(irq.rises, 0);
}

// Reads the two integers of ADDR's Package out of the DSDT the way ACPICA would evaluate them
// (DWordConst, ByteConst, ZeroOp or OneOp are all build_dsdt emits for them).
std::optional<std::uint64_t> addr_from_dsdt(const std::vector<std::uint8_t>& dsdt) {
    const std::vector<std::uint8_t> method{0x14, 0x10, 'A', 'D', 'D', 'R', 0x00, 0xA4, 0x12};
    auto it = std::search(dsdt.begin(), dsdt.end(), method.begin(), method.end());
    if (it == dsdt.end()) {
        return std::nullopt;
    }
    std::size_t pos = static_cast<std::size_t>(it - dsdt.begin()) + method.size() + 1;
    if (pos >= dsdt.size() || dsdt[pos] != 2) {  // NumElements
        return std::nullopt;
    }
    ++pos;
    std::uint64_t halves[2] = {};
    for (auto& h : halves) {
        const std::uint8_t op = dsdt.at(pos++);
        std::size_t n = 0;
        if (op == 0x00 || op == 0x01) {
            h = op;
        } else if (op == 0x0A) {
            n = 1;
        } else if (op == 0x0B) {
            n = 2;
        } else if (op == 0x0C) {
            n = 4;
        } else {
            return std::nullopt;
        }
        for (std::size_t i = 0; i < n; ++i) {
            h |= std::uint64_t{dsdt.at(pos++)} << (8 * i);
        }
    }
    return halves[0] | (halves[1] << 32);
}

TEST_F(VmGenIdTest, IdIsWhereAddrSays) {
    auto dev = make(/*host_random=*/true);
    ASSERT_TRUE(dev);
    acpi::PlatformDescription desc;
    desc.ioapic_id = 1;
    desc.devices = dev->acpi_devices(Placement{.gsis = {5}});
    auto dsdt = acpi::build_dsdt(desc);
    ASSERT_TRUE(dsdt.ok()) << dsdt.error().message();
    const auto addr = addr_from_dsdt(*dsdt);
    ASSERT_TRUE(addr.has_value());
    EXPECT_EQ(*addr, kAddress);
    EXPECT_EQ(guest_id(*addr), dev->generation_id());
    EXPECT_NE(dev->generation_id(), Id{});  // 2^-128 odds of a false failure
}

// Records, at each rising edge, the ID in guest memory: what the guest's handler would read.
struct CheckingIrq final : IrqLine {
    const GuestMemory* mem = nullptr;
    Id seen{};
    int rises = 0;
    bool level = false;
    void set_level(bool high) override {
        if (high && !level) {
            ++rises;
            EXPECT_TRUE(mem->read(GuestAddress(kAddress), seen).ok());
        }
        level = high;
    }
};

TEST_F(VmGenIdTest, RegenerateWritesANewIdThenPulsesTheLine) {
    CheckingIrq line;
    line.mem = &*mem;
    auto dev = VmGenId::create(*mem, GuestAddress(kAddress), line,
                               [this](std::span<std::uint8_t> out) { return random(out); });
    ASSERT_TRUE(dev.ok());
    const Id first = (*dev)->generation_id();
    EXPECT_EQ(line.rises, 0);

    ASSERT_TRUE((*dev)->regenerate().ok());
    const Id second = (*dev)->generation_id();
    EXPECT_NE(second, first);
    EXPECT_EQ(guest_id(), second);
    EXPECT_EQ(line.rises, 1);
    EXPECT_EQ(line.seen, second);  // in memory before the edge
    EXPECT_FALSE(line.level);      // an edge: raised and lowered

    ASSERT_TRUE((*dev)->regenerate().ok());
    EXPECT_EQ(line.rises, 2);
    EXPECT_NE((*dev)->generation_id(), second);
    EXPECT_EQ(line.seen, (*dev)->generation_id());
}

TEST_F(VmGenIdTest, RegenerateWithTheHostRandomSource) {
    auto dev = make(/*host_random=*/true);
    ASSERT_TRUE(dev);
    const Id before = dev->generation_id();
    ASSERT_TRUE(dev->regenerate().ok());
    EXPECT_NE(dev->generation_id(), before);
    EXPECT_EQ(guest_id(), dev->generation_id());
    EXPECT_EQ(irq.rises, 1);
    EXPECT_FALSE(irq.level);
}

TEST_F(VmGenIdTest, FailedRegenerateChangesNothing) {
    auto dev = make();
    ASSERT_TRUE(dev);
    const Id before = dev->generation_id();
    random.fail = true;
    EXPECT_FALSE(dev->regenerate().ok());
    EXPECT_EQ(dev->generation_id(), before);
    EXPECT_EQ(guest_id(), before);
    EXPECT_EQ(irq.rises, 0);
}

TEST_F(VmGenIdTest, CreateRejectsBadPlacementAndFailedRandom) {
    EXPECT_FALSE(VmGenId::create(*mem, GuestAddress(kAddress + 4), irq).ok());
    EXPECT_FALSE(VmGenId::create(*mem, GuestAddress((1 << 20) - 8), irq).ok());  // past RAM
    random.fail = true;
    EXPECT_FALSE(
        VmGenId::create(*mem, GuestAddress(kAddress), irq, [this](std::span<std::uint8_t> out) {
            return random(out);
        }).ok());
}

TEST_F(VmGenIdTest, StateRoundTrip) {
    auto dev = make();
    ASSERT_TRUE(dev);
    const VmGenIdState saved = dev->save_state();
    EXPECT_EQ(saved.generation_id, dev->generation_id());
    ASSERT_TRUE(dev->regenerate().ok());
    ASSERT_NE(dev->generation_id(), saved.generation_id);
    const int rises = irq.rises;

    // A guest scribbling over the ID changes neither what is saved nor what is restored.
    const Id junk{0xFF, 0xFF, 0xFF, 0xFF};
    ASSERT_TRUE(mem->write(GuestAddress(kAddress), junk).ok());
    EXPECT_EQ(dev->save_state().generation_id, dev->generation_id());

    ASSERT_TRUE(dev->restore_state(saved).ok());
    EXPECT_EQ(dev->generation_id(), saved.generation_id);
    EXPECT_EQ(guest_id(), saved.generation_id);
    EXPECT_EQ(irq.rises, rises);  // restoring does not notify

    // A second device restored from the same state (a fresh VMM restoring a snapshot).
    RecordingIrq irq2;
    auto other = VmGenId::create(*mem, GuestAddress(kAddress), irq2);
    ASSERT_TRUE(other.ok());
    ASSERT_TRUE((*other)->restore_state(saved).ok());
    EXPECT_EQ((*other)->save_state().generation_id, saved.generation_id);
    EXPECT_EQ(guest_id(), saved.generation_id);
}

}  // namespace
}  // namespace vireo
