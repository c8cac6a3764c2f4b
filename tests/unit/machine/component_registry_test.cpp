// The component registry (machine/component_registry.h): a device added with one registration
// line is on the bus where it was placed, in the DSDT, in a snapshot (with its section's version)
// and in the metrics, and is paused, resumed and reset with the machine. What it refuses changes
// nothing.
#include "machine/component_registry.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>

#include "acpi/acpi_tables.h"

namespace vireo {
namespace {

// A device as a newcomer would add one: a 4-byte register on the port bus, a counter, its AML
// and a state that changed encoding once. Version 1 saved the register alone; version 2 adds
// the counter. Restoring version 1 keeps the counter at zero.
struct TestDeviceState {
    std::uint32_t reg = 0;
    std::uint64_t writes = 0;
};

template <typename Ar>
void persist(Ar& ar, TestDeviceState& s) {
    ar(s.reg, s.writes);
}

struct TestDeviceStateV1 {
    std::uint32_t reg = 0;
};

template <typename Ar>
void persist(Ar& ar, TestDeviceStateV1& s) {
    ar(s.reg);
}

class TestDevice final : public BusDevice, public Component {
public:
    void read(std::uint64_t, std::span<std::uint8_t> data) override {
        std::fill(data.begin(), data.end(), static_cast<std::uint8_t>(m_s.reg));
    }
    void write(std::uint64_t, std::span<const std::uint8_t> data) override {
        m_s.reg = data[0];
        ++m_s.writes;
    }

    std::vector<acpi::Aml> acpi_devices(const Placement& p) const override {
        const auto base = static_cast<std::uint16_t>(p.ports.at(0).base);
        return {acpi::Aml::device(
            "TDEV", {acpi::Aml::name("_HID", acpi::Aml::string("VIRE0001")),
                     acpi::Aml::name("_CRS", acpi::Aml::resource_template({acpi::io_port_descriptor(
                                                 true, base, base, 1, 4)}))})};
    }
    std::uint32_t state_version() const override { return 2; }
    Result<std::vector<std::uint8_t>> save_section() override { return save_to_bytes(m_s); }
    Result<void> restore_section(std::span<const std::uint8_t> bytes,
                                 std::uint32_t version) override {
        if (version == 1) {
            auto old = load_from_bytes<TestDeviceStateV1>(bytes);
            if (!old) {
                return old.error();
            }
            m_s = {old->reg, 0};
            return ok();
        }
        auto s = load_from_bytes<TestDeviceState>(bytes);
        if (!s) {
            return s.error();
        }
        m_s = *s;
        return ok();
    }
    void pause() override { ++pauses; }
    void resume() override { ++resumes; }
    void reset() override { ++resets; }
    std::string metrics_json() const override { return "\"writes\":" + std::to_string(m_s.writes); }

    TestDeviceState m_s;
    int pauses = 0;
    int resumes = 0;
    int resets = 0;
};

// A device with nothing to save and nothing to count.
class Quiet final : public BusDevice, public Component {
public:
    void read(std::uint64_t, std::span<std::uint8_t> data) override {
        std::fill(data.begin(), data.end(), 0x11);
    }
    void write(std::uint64_t, std::span<const std::uint8_t>) override {}
};

bool contains(std::span<const std::uint8_t> hay, std::string_view needle) {
    return std::search(hay.begin(), hay.end(), needle.begin(), needle.end()) != hay.end();
}

class ComponentRegistryTest : public ::testing::Test {
protected:
    IoBus m_ports;
    IoBus m_mmio;
    ComponentRegistry m_reg{m_ports, m_mmio};
    std::shared_ptr<TestDevice> m_dev = std::make_shared<TestDevice>();

    void add_test_device() {
        ASSERT_TRUE(m_reg.add("test-device", m_dev, {.ports = {{0x510, 4, m_dev}}, .gsis = {9}}));
    }
};

TEST_F(ComponentRegistryTest, OneRegistrationPutsTheDeviceEverywhere) {
    add_test_device();
    // On the bus, where it was placed.
    const std::uint8_t v = 0x5a;
    ASSERT_TRUE(m_ports.write(0x512, std::span(&v, 1)));
    std::uint8_t got = 0;
    ASSERT_TRUE(m_ports.read(0x510, std::span(&got, 1)));
    EXPECT_EQ(got, 0x5a);
    EXPECT_EQ(m_reg.find("test-device"), m_dev.get());

    // In the DSDT.
    acpi::PlatformDescription desc;
    desc.ioapic_id = 1;
    desc.devices = m_reg.acpi_devices();
    auto dsdt = acpi::build_dsdt(desc);
    ASSERT_TRUE(dsdt) << dsdt.error().message();
    EXPECT_TRUE(contains(*dsdt, "TDEV"));
    EXPECT_TRUE(contains(*dsdt, "VIRE0001"));
    const std::uint8_t io[] = {0x47, 0x01, 0x10, 0x05, 0x10, 0x05, 0x01, 0x04};  // IO 0x510, 4
    EXPECT_NE(std::search(dsdt->begin(), dsdt->end(), std::begin(io), std::end(io)), dsdt->end());

    // In a snapshot, with its version.
    SnapshotContents snap;
    ASSERT_TRUE(m_reg.save(snap));
    const auto* s = snap.find("test-device");
    ASSERT_NE(s, nullptr);
    EXPECT_EQ(s->version, 2U);

    // In the metrics.
    EXPECT_EQ(m_reg.metrics_json(), R"({"name":"test-device","writes":1})");

    // Paused and resumed with the machine.
    m_reg.pause_all();
    m_reg.resume_all();
    EXPECT_EQ(m_dev->pauses, 1);
    EXPECT_EQ(m_dev->resumes, 1);
    // And reset before the machine goes.
    m_reg.reset_all();
    EXPECT_EQ(m_dev->resets, 1);
}

TEST_F(ComponentRegistryTest, RestoreReadsTheCurrentAndTheOlderVersion) {
    add_test_device();
    m_dev->m_s = {0x77, 5};
    SnapshotContents snap;
    ASSERT_TRUE(m_reg.save(snap));
    m_dev->m_s = {};
    const auto none = [](std::string_view) { return false; };
    ASSERT_TRUE(m_reg.restore(snap, none));
    EXPECT_EQ(m_dev->m_s.reg, 0x77U);
    EXPECT_EQ(m_dev->m_s.writes, 5U);

    // What an older vireo wrote: version 1, the register alone.
    SnapshotContents old;
    old.add("test-device", save_to_bytes(TestDeviceStateV1{0x33}), 1);
    ASSERT_TRUE(m_reg.restore(old, none));
    EXPECT_EQ(m_dev->m_s.reg, 0x33U);
    EXPECT_EQ(m_dev->m_s.writes, 0U);
}

TEST_F(ComponentRegistryTest, RestoreRefusesWhatItCannotRead) {
    add_test_device();
    const auto none = [](std::string_view) { return false; };
    const auto bytes = save_to_bytes(TestDeviceState{1, 2});
    auto error_of = [&](const SnapshotContents& c) {
        auto r = m_reg.restore(c, none);
        return r ? std::string("(accepted)") : r.error().message();
    };
    SnapshotContents newer;
    newer.add("test-device", bytes, 3);
    EXPECT_NE(error_of(newer).find("version 3; this vireo reads versions 1 to 2"),
              std::string::npos)
        << error_of(newer);
    SnapshotContents zero;
    zero.add("test-device", bytes, 0);
    EXPECT_NE(error_of(zero).find("version 0"), std::string::npos);
    SnapshotContents missing;
    EXPECT_NE(error_of(missing).find("no 'test-device' section"), std::string::npos);
    SnapshotContents extra;
    extra.add("test-device", bytes, 2);
    extra.add("virtio.9", {}, 1);
    EXPECT_NE(error_of(extra).find("'virtio.9' that no component"), std::string::npos);
    // Unless the machine says the section is its own.
    EXPECT_TRUE(m_reg.restore(extra, [](std::string_view n) { return n == "virtio.9"; }));
    SnapshotContents truncated;
    truncated.add("test-device", std::vector<std::uint8_t>(bytes.begin(), bytes.end() - 1), 2);
    EXPECT_NE(error_of(truncated).find("section 'test-device'"), std::string::npos);
}

TEST_F(ComponentRegistryTest, RefusedAddsChangeNothing) {
    add_test_device();
    auto quiet = std::make_shared<Quiet>();
    auto refused = [&](std::string name, Placement p) {
        auto r = m_reg.add(std::move(name), quiet, std::move(p));
        return r ? std::string("(accepted)") : r.error().message();
    };
    EXPECT_NE(refused("test-device", {}).find("registered twice"), std::string::npos);
    EXPECT_NE(refused("Bad Name", {}).find("not a valid section name"), std::string::npos);
    EXPECT_NE(refused("", {}).find("not a valid section name"), std::string::npos);
    EXPECT_NE(refused("overlap", {.ports = {{0x513, 2, quiet}}}).find("overlaps"),
              std::string::npos);
    EXPECT_NE(refused("gsi", {.gsis = {9}}).find("GSI 9 is already test-device's"),
              std::string::npos);
    // A second range that overlaps the first one of the same registration: the free first
    // range must not be left on the bus.
    EXPECT_NE(
        refused("self", {.mmio = {{0x1000, 0x100, quiet}, {0x10f0, 0x10, quiet}}}).find("overlap"),
        std::string::npos);
    EXPECT_NE(refused("late", {.mmio = {{0x2000, 0x10, quiet}}, .gsis = {9}}).find("GSI"),
              std::string::npos);
    std::uint8_t b = 0;
    EXPECT_FALSE(m_mmio.read(0x1000, std::span(&b, 1)));
    EXPECT_FALSE(m_mmio.read(0x2000, std::span(&b, 1)));
    EXPECT_EQ(m_reg.entries().size(), 1U);

    ASSERT_TRUE(m_reg.add("slot1", quiet, {.pci_slot = 1}));
    EXPECT_NE(refused("slot1b", {.pci_slot = 1}).find("PCI slot 1 is already slot1's"),
              std::string::npos);

    // A component with no state and no counters is in neither the snapshot nor the metrics.
    ASSERT_TRUE(m_reg.add("quiet", quiet, {.mmio = {{0x3000, 0x10, quiet}}}));
    SnapshotContents snap;
    ASSERT_TRUE(m_reg.save(snap));
    EXPECT_EQ(snap.find("quiet"), nullptr);
    EXPECT_EQ(m_reg.metrics_json().find("quiet"), std::string::npos);
    ASSERT_TRUE(m_mmio.read(0x3004, std::span(&b, 1)));
    EXPECT_EQ(b, 0x11);
}

}  // namespace
}  // namespace vireo
