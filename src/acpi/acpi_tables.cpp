#include "acpi/acpi_tables.h"

#include <bit>
#include <cstddef>
#include <cstring>
#include <string>
#include <type_traits>

#include <fmt/format.h>

#include "acpi/aml.h"
#include "acpi/byte_writer.h"

namespace vireo::acpi {

namespace {

// The packed structs below are copied byte for byte; ACPI is little-endian like the host.
static_assert(std::endian::native == std::endian::little);

#pragma pack(push, 1)

// System Description Table Header (§5.2.6, Table 5.4).
struct SdtHeader {
    char signature[4];
    std::uint32_t length;  // whole table, header included
    std::uint8_t revision;
    std::uint8_t checksum;  // whole table sums to 0
    char oem_id[6];
    char oem_table_id[8];
    std::uint32_t oem_revision;
    char creator_id[4];
    std::uint32_t creator_revision;
};
static_assert(sizeof(SdtHeader) == 36);
static_assert(offsetof(SdtHeader, length) == 4);
static_assert(offsetof(SdtHeader, checksum) == 9);
static_assert(offsetof(SdtHeader, oem_id) == 10);
static_assert(offsetof(SdtHeader, oem_table_id) == 16);
static_assert(offsetof(SdtHeader, oem_revision) == 24);
static_assert(offsetof(SdtHeader, creator_id) == 28);
static_assert(offsetof(SdtHeader, creator_revision) == 32);

// Root System Description Pointer, revision 2 (§5.2.5.3, Table 5.3).
struct Rsdp {
    char signature[8];      // "RSD PTR "
    std::uint8_t checksum;  // over bytes 0-19 (the ACPI 1.0 structure)
    char oem_id[6];
    std::uint8_t revision;  // 2 = ACPI 2.0+ (has the XSDT address)
    std::uint32_t rsdt_address;
    std::uint32_t length;  // 36
    std::uint64_t xsdt_address;
    std::uint8_t extended_checksum;  // over all 36 bytes
    std::uint8_t reserved[3];
};
static_assert(sizeof(Rsdp) == 36);
static_assert(offsetof(Rsdp, checksum) == 8);
static_assert(offsetof(Rsdp, revision) == 15);
static_assert(offsetof(Rsdp, rsdt_address) == 16);
static_assert(offsetof(Rsdp, length) == 20);
static_assert(offsetof(Rsdp, xsdt_address) == 24);
static_assert(offsetof(Rsdp, extended_checksum) == 32);

// Generic Address Structure (§5.2.3.2, Table 5.1).
struct Gas {
    std::uint8_t space_id;  // 1 = System I/O
    std::uint8_t bit_width;
    std::uint8_t bit_offset;
    std::uint8_t access_size;  // 1 = byte access
    std::uint64_t address;
};
static_assert(sizeof(Gas) == 12);

// Fixed ACPI Description Table, revision 6 (§5.2.9, Table 5.9).
struct Fadt {
    SdtHeader header;
    std::uint32_t firmware_ctrl;  // FACS: none under hardware-reduced ACPI
    std::uint32_t dsdt;
    std::uint8_t reserved0;
    std::uint8_t preferred_pm_profile;
    std::uint16_t sci_int;
    std::uint32_t smi_cmd;
    std::uint8_t acpi_enable;
    std::uint8_t acpi_disable;
    std::uint8_t s4bios_req;
    std::uint8_t pstate_cnt;
    std::uint32_t pm_blocks[8];     // PM1a/b_EVT, PM1a/b_CNT, PM2_CNT, PM_TMR, GPE0, GPE1 (56-87)
    std::uint8_t pm_block_lens[6];  // PM1_EVT .. GPE1_BLK lengths (88-93)
    std::uint8_t gpe1_base;
    std::uint8_t cst_cnt;
    std::uint16_t p_lvl2_lat;
    std::uint16_t p_lvl3_lat;
    std::uint16_t flush_size;
    std::uint16_t flush_stride;
    std::uint8_t duty_offset;
    std::uint8_t duty_width;
    std::uint8_t day_alrm;
    std::uint8_t mon_alrm;
    std::uint8_t century;
    std::uint16_t iapc_boot_arch;
    std::uint8_t reserved1;
    std::uint32_t flags;
    Gas reset_reg;
    std::uint8_t reset_value;
    std::uint16_t arm_boot_arch;
    std::uint8_t minor_version;
    std::uint64_t x_firmware_ctrl;
    std::uint64_t x_dsdt;
    Gas x_pm_blocks[8];  // X_PM1a_EVT_BLK .. X_GPE1_BLK (148-243)
    Gas sleep_control_reg;
    Gas sleep_status_reg;
    std::uint64_t hypervisor_vendor_id;
};
static_assert(sizeof(Fadt) == 276);
static_assert(offsetof(Fadt, dsdt) == 40);
static_assert(offsetof(Fadt, preferred_pm_profile) == 45);
static_assert(offsetof(Fadt, sci_int) == 46);
static_assert(offsetof(Fadt, pm_blocks) == 56);
static_assert(offsetof(Fadt, pm_block_lens) == 88);
static_assert(offsetof(Fadt, iapc_boot_arch) == 109);
static_assert(offsetof(Fadt, flags) == 112);
static_assert(offsetof(Fadt, reset_reg) == 116);
static_assert(offsetof(Fadt, reset_value) == 128);
static_assert(offsetof(Fadt, minor_version) == 131);
static_assert(offsetof(Fadt, x_dsdt) == 140);
static_assert(offsetof(Fadt, x_pm_blocks) == 148);
static_assert(offsetof(Fadt, sleep_control_reg) == 244);
static_assert(offsetof(Fadt, sleep_status_reg) == 256);
static_assert(offsetof(Fadt, hypervisor_vendor_id) == 268);

// Multiple APIC Description Table (§5.2.12, Table 5.43), followed by the structures below.
struct MadtHeader {
    SdtHeader header;
    std::uint32_t local_apic_address;
    std::uint32_t flags;
};
static_assert(sizeof(MadtHeader) == 44);

// Processor Local APIC Structure (§5.2.12.2, Table 5.45).
struct MadtLocalApic {
    std::uint8_t type;    // 0
    std::uint8_t length;  // 8
    std::uint8_t processor_uid;
    std::uint8_t apic_id;
    std::uint32_t flags;  // bit 0 Enabled
};
static_assert(sizeof(MadtLocalApic) == 8);

// I/O APIC Structure (§5.2.12.3, Table 5.47).
struct MadtIoApic {
    std::uint8_t type;    // 1
    std::uint8_t length;  // 12
    std::uint8_t io_apic_id;
    std::uint8_t reserved;
    std::uint32_t address;
    std::uint32_t gsi_base;
};
static_assert(sizeof(MadtIoApic) == 12);

// Interrupt Source Override Structure (§5.2.12.5, Table 5.48).
struct MadtInterruptOverride {
    std::uint8_t type;    // 2
    std::uint8_t length;  // 10
    std::uint8_t bus;     // 0 = ISA
    std::uint8_t source;
    std::uint32_t gsi;
    std::uint16_t flags;  // MPS INTI flags (Table 5.50): 0 = conforms to the bus
};
static_assert(sizeof(MadtInterruptOverride) == 10);

// Local APIC NMI Structure (§5.2.12.7, Table 5.52).
struct MadtLocalApicNmi {
    std::uint8_t type;           // 4
    std::uint8_t length;         // 6
    std::uint8_t processor_uid;  // 0xFF = all processors
    std::uint16_t flags;
    std::uint8_t lint;
};
static_assert(sizeof(MadtLocalApicNmi) == 6);

// MCFG (PCI Firmware Specification 3.2 §4.1.2): header, 8 reserved bytes, allocations.
struct McfgAllocation {
    std::uint64_t base;
    std::uint16_t segment;
    std::uint8_t start_bus;
    std::uint8_t end_bus;
    std::uint32_t reserved;
};
static_assert(sizeof(McfgAllocation) == 16);

#pragma pack(pop)

constexpr std::size_t kTableAlign = 8;

// Table revisions for ACPI 6.4.
constexpr std::uint8_t kDsdtRevision = 2;      // >= 2: AML integers are 64-bit (§5.2.11.1)
constexpr std::uint8_t kFadtRevision = 6;      // FADT major version 6 ...
constexpr std::uint8_t kFadtMinorVersion = 4;  // ... minor 4 (offset 131)
constexpr std::uint8_t kMadtRevision = 5;
constexpr std::uint8_t kMcfgRevision = 1;
constexpr std::uint8_t kXsdtRevision = 1;
constexpr std::uint8_t kRsdpRevision = 2;

// FADT Flags (offset 112, Table 5.10).
constexpr std::uint32_t kFadtPwrButton = 1U << 4;  // 1 = no fixed-feature power button
constexpr std::uint32_t kFadtSlpButton = 1U << 5;  // 1 = no fixed-feature sleep button
constexpr std::uint32_t kFadtResetRegSup = 1U << 10;
constexpr std::uint32_t kFadtHwReducedAcpi = 1U << 20;
// IA-PC Boot Architecture Flags (offset 109, Table 5.11). LEGACY_DEVICES (bit 0) stays clear;
// 8042 (bit 1) is set only with an i8042 (PlatformDescription::i8042); MSI Not Supported
// (bit 3) stays clear.
constexpr std::uint16_t kIapc8042 = 1U << 1;
constexpr std::uint16_t kIapcVgaNotPresent = 1U << 2;
// Preferred_PM_Profile (offset 45): 0 = Unspecified; a VM is neither desktop nor server.
constexpr std::uint8_t kPmProfileUnspecified = 0;
// Generic Address Structure address space id (Table 5.1) and access size.
constexpr std::uint8_t kGasSystemIo = 1;
constexpr std::uint8_t kGasByteAccess = 1;
// MADT.
constexpr std::uint32_t kMadtPcatCompat = 1;    // dual 8259 PICs present (Table 5.44)
constexpr std::uint32_t kLocalApicEnabled = 1;  // Table 5.46

template <std::size_t N>
void set_chars(char (&dst)[N], const char (&src)[N + 1]) {
    std::memcpy(dst, src, N);
}

template <typename T>
void append_struct(std::vector<std::uint8_t>& out, const T& value) {
    static_assert(std::is_trivially_copyable_v<T>);
    const auto* p = reinterpret_cast<const std::uint8_t*>(&value);
    out.insert(out.end(), p, p + sizeof(T));
}

SdtHeader make_header(const char (&signature)[5], std::uint8_t revision) {
    SdtHeader h{};
    set_chars(h.signature, signature);
    h.revision = revision;
    set_chars(h.oem_id, "VIREO ");
    set_chars(h.oem_table_id, "VIREOVM ");
    h.oem_revision = 1;
    set_chars(h.creator_id, "VIRO");
    h.creator_revision = 1;
    return h;
}

// Patches Length (offset 4) and Checksum (offset 9) of a complete table.
std::vector<std::uint8_t> finish_table(std::vector<std::uint8_t> table) {
    const auto length = static_cast<std::uint32_t>(table.size());
    std::memcpy(table.data() + offsetof(SdtHeader, length), &length, sizeof(length));
    table[offsetof(SdtHeader, checksum)] = 0;
    table[offsetof(SdtHeader, checksum)] = checksum(table);
    return table;
}

Gas system_io_byte(std::uint16_t port) {
    return Gas{kGasSystemIo, 8, 0, kGasByteAccess, port};
}

// Rounds `v` up to kTableAlign; false on overflow.
bool align_up(std::uint64_t v, std::uint64_t& out) {
    if (v > UINT64_MAX - (kTableAlign - 1)) {
        return false;
    }
    out = (v + kTableAlign - 1) & ~std::uint64_t{kTableAlign - 1};
    return true;
}

}  // namespace

std::uint8_t checksum(std::span<const std::uint8_t> bytes) {
    std::uint8_t sum = 0;
    for (auto b : bytes) {
        sum = static_cast<std::uint8_t>(sum + b);
    }
    return static_cast<std::uint8_t>(0x100 - sum);
}

Result<void> validate(const PlatformDescription& desc) {
    // Processor Local APIC structures carry 8-bit UIDs and APIC IDs; 0xFF is the xAPIC broadcast
    // ID, so IDs 0..254 serve at most 255 CPUs (more would need x2APIC structures).
    if (desc.num_cpus == 0 || desc.num_cpus > 255) {
        return Error(fmt::format("acpi: {} CPUs, need 1-255", desc.num_cpus));
    }
    // I/O APIC and local APIC IDs share the APIC bus ID space.
    if (desc.ioapic_id < desc.num_cpus) {
        return Error(fmt::format("acpi: I/O APIC id {} clashes with the local APIC ids 0-{}",
                                 desc.ioapic_id, desc.num_cpus - 1));
    }
    if (desc.lapic_address > UINT32_MAX || desc.ioapic_address > UINT32_MAX) {
        return Error("acpi: APIC addresses must be below 4 GiB (32-bit MADT fields)");
    }
    if (desc.s5_sleep_type > 7) {
        return Error(fmt::format("acpi: S5 sleep type {} does not fit SLP_TYP (3 bits)",
                                 desc.s5_sleep_type));
    }
    if (desc.ecam) {
        const auto& e = *desc.ecam;
        if (e.start_bus > e.end_bus) {
            return Error("acpi: ECAM start bus is after end bus");
        }
        // 1 MiB of configuration space per bus (PCI Firmware 3.2 §4.1.2).
        const std::uint64_t end_offset = (std::uint64_t{e.end_bus} + 1) << 20;
        if (e.base > UINT64_MAX - end_offset) {
            return Error(fmt::format("acpi: ECAM at {:#x} wraps", e.base));
        }
    }
    return ok();
}

Result<std::vector<std::uint8_t>> build_dsdt(const PlatformDescription& desc) {
    Aml body;
    if (!desc.devices.empty()) {
        body.append(Aml::scope("\\_SB_", desc.devices));
    }
    // \_S5_ (§7.4.2): Package {SLP_TYPa, SLP_TYPb, reserved, reserved}. Hardware-reduced
    // platforms use only SLP_TYPa, written to SLEEP_CONTROL_REG bits 4:2 (§4.8.3.7).
    const auto s5 = Aml::integer(desc.s5_sleep_type);
    body.append(Aml::name("_S5_", Aml::package({s5, s5, Aml::integer(0), Aml::integer(0)})));

    auto aml = std::move(body).into_bytes();
    if (!aml) {
        return aml.error().wrap("acpi: DSDT");
    }
    std::vector<std::uint8_t> table;
    append_struct(table, make_header("DSDT", kDsdtRevision));
    table.insert(table.end(), aml->begin(), aml->end());
    return finish_table(std::move(table));
}

std::vector<std::uint8_t> build_fadt(const PlatformDescription& desc, GuestAddress dsdt) {
    Fadt f{};
    f.header = make_header("FACP", kFadtRevision);
    // DSDT (32-bit) is only meaningful below 4 GiB; X_DSDT takes precedence when both are set.
    f.dsdt = dsdt.value <= UINT32_MAX ? static_cast<std::uint32_t>(dsdt.value) : 0;
    f.x_dsdt = dsdt.value;
    f.preferred_pm_profile = kPmProfileUnspecified;
    // SCI_INT, SMI_CMD, every PM1/PM2/PM_TMR/GPE block and its X_ form stay 0: hardware-reduced.
    f.iapc_boot_arch = kIapcVgaNotPresent | (desc.i8042 ? kIapc8042 : 0);
    f.flags = kFadtHwReducedAcpi | kFadtResetRegSup | kFadtPwrButton | kFadtSlpButton;
    f.reset_reg = system_io_byte(desc.reset_port);
    f.reset_value = desc.reset_value;
    f.minor_version = kFadtMinorVersion;
    f.sleep_control_reg = system_io_byte(desc.sleep_control_port);
    f.sleep_status_reg = system_io_byte(desc.sleep_status_port);
    // Hypervisor Vendor Identity: "VIREO" as a little-endian u64 (the bytes read "VIREO\0\0\0").
    std::memcpy(&f.hypervisor_vendor_id, "VIREO\0\0", sizeof(f.hypervisor_vendor_id));

    std::vector<std::uint8_t> table;
    append_struct(table, f);
    return finish_table(std::move(table));
}

std::vector<std::uint8_t> build_madt(const PlatformDescription& desc) {
    MadtHeader h{};
    h.header = make_header("APIC", kMadtRevision);
    h.local_apic_address = static_cast<std::uint32_t>(desc.lapic_address);
    h.flags = kMadtPcatCompat;
    std::vector<std::uint8_t> table;
    append_struct(table, h);
    for (std::uint32_t i = 0; i < desc.num_cpus && i < 255; ++i) {
        const auto id = static_cast<std::uint8_t>(i);
        append_struct(table, MadtLocalApic{0, sizeof(MadtLocalApic), id, id, kLocalApicEnabled});
    }
    append_struct(table, MadtIoApic{1, sizeof(MadtIoApic), desc.ioapic_id, 0,
                                    static_cast<std::uint32_t>(desc.ioapic_address), 0});
    // ISA IRQ 0 (PIT) is wired to I/O APIC pin 2, as on PC hardware; polarity and trigger
    // conform to the ISA bus (edge, active high).
    append_struct(table, MadtInterruptOverride{2, sizeof(MadtInterruptOverride), 0, 0, 2, 0});
    // NMI arrives on LINT1 of every processor.
    append_struct(table, MadtLocalApicNmi{4, sizeof(MadtLocalApicNmi), 0xFF, 0, 1});
    return finish_table(std::move(table));
}

std::vector<std::uint8_t> build_mcfg(const EcamDesc& ecam) {
    std::vector<std::uint8_t> table;
    append_struct(table, make_header("MCFG", kMcfgRevision));
    append_le(table, std::uint64_t{0});  // reserved (offset 36)
    append_struct(table, McfgAllocation{ecam.base, ecam.segment, ecam.start_bus, ecam.end_bus, 0});
    return finish_table(std::move(table));
}

std::vector<std::uint8_t> build_xsdt(std::span<const std::uint64_t> entries) {
    std::vector<std::uint8_t> table;
    append_struct(table, make_header("XSDT", kXsdtRevision));
    for (auto e : entries) {
        append_le(table, e);  // 64-bit physical addresses from offset 36 (§5.2.8)
    }
    return finish_table(std::move(table));
}

std::vector<std::uint8_t> build_rsdp(GuestAddress xsdt) {
    Rsdp r{};
    set_chars(r.signature, "RSD PTR ");
    set_chars(r.oem_id, "VIREO ");
    r.revision = kRsdpRevision;
    r.rsdt_address = 0;  // no RSDT: an ACPI 2.0+ OS uses the XSDT
    r.length = sizeof(Rsdp);
    r.xsdt_address = xsdt.value;
    std::vector<std::uint8_t> bytes;
    append_struct(bytes, r);
    bytes[offsetof(Rsdp, checksum)] =
        checksum(std::span(bytes).first(offsetof(Rsdp, rsdt_address) + sizeof(r.rsdt_address)));
    bytes[offsetof(Rsdp, extended_checksum)] = checksum(bytes);
    return bytes;
}

Result<AcpiLayout> write_acpi_tables(GuestMemory& mem, const PlatformDescription& desc,
                                     GuestAddress rsdp_address, GuestAddress tables_start,
                                     GuestAddress tables_end) {
    if (auto r = validate(desc); !r) {
        return r.error();
    }
    if (rsdp_address.value % 16 != 0) {
        return Error(
            fmt::format("acpi: RSDP address {:#x} is not 16-byte aligned", rsdp_address.value));
    }
    auto dsdt = build_dsdt(desc);
    if (!dsdt) {
        return dsdt.error();
    }

    struct Placed {
        GuestAddress at;
        std::vector<std::uint8_t> bytes;
    };
    std::vector<Placed> pending;
    GuestAddress cursor = tables_start;
    bool fits = true;
    // Places `bytes` at the next 8-byte boundary; returns its address.
    auto place = [&](std::vector<std::uint8_t> bytes) {
        std::uint64_t at = 0;
        GuestAddress next;
        if (!align_up(cursor.value, at) || !GuestAddress(at).checked_add(bytes.size(), next)) {
            fits = false;
            return GuestAddress();
        }
        cursor = next;
        pending.push_back({GuestAddress(at), std::move(bytes)});
        return GuestAddress(at);
    };

    AcpiLayout layout;
    layout.rsdp = rsdp_address;
    layout.dsdt = place(std::move(dsdt).value());
    layout.fadt = place(build_fadt(desc, layout.dsdt));
    layout.madt = place(build_madt(desc));
    std::vector<std::uint64_t> entries{layout.fadt.value, layout.madt.value};
    if (desc.ecam) {
        layout.mcfg = place(build_mcfg(*desc.ecam));
        entries.push_back(layout.mcfg->value);
    }
    layout.xsdt = place(build_xsdt(entries));
    layout.end = cursor;
    if (!fits || layout.end > tables_end) {
        return Error(fmt::format("acpi: tables from {:#x} do not fit below {:#x}",
                                 tables_start.value, tables_end.value));
    }

    auto rsdp = build_rsdp(layout.xsdt);
    GuestAddress rsdp_end;
    if (!rsdp_address.checked_add(rsdp.size(), rsdp_end) ||
        (rsdp_address < layout.end && rsdp_end > tables_start)) {
        return Error(fmt::format("acpi: RSDP at {:#x} overlaps the tables", rsdp_address.value));
    }
    pending.push_back({rsdp_address, std::move(rsdp)});

    for (const auto& k : desc.keep_clear) {
        const std::uint64_t k_end =
            k.size > UINT64_MAX - k.address ? UINT64_MAX : k.address + k.size;
        for (const auto& p : pending) {
            // Every pending table was placed without wrapping (checked_add above).
            if (k.address < p.at.value + p.bytes.size() && p.at.value < k_end) {
                return Error(fmt::format("acpi: the {} at {:#x} overlaps the table at {:#x}",
                                         k.what, k.address, p.at.value));
            }
        }
    }

    // Check everything before writing anything, so a failure leaves guest memory untouched.
    for (const auto& p : pending) {
        if (!mem.contains_range(p.at, p.bytes.size())) {
            return Error(fmt::format("acpi: table at {:#x}+{:#x} is not inside guest RAM",
                                     p.at.value, p.bytes.size()));
        }
    }
    for (const auto& p : pending) {
        if (auto r = mem.write(p.at, p.bytes); !r) {
            return r.error().wrap("acpi");
        }
    }
    return layout;
}

}  // namespace vireo::acpi
