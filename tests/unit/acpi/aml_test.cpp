#include "acpi/aml.h"

#include <algorithm>
#include <cstdint>
#include <span>
#include <vector>

#include <gtest/gtest.h>

namespace vireo::acpi {
namespace {

using Bytes = std::vector<std::uint8_t>;

Bytes bytes(const Aml& a) {
    EXPECT_TRUE(a.ok()) << (a.ok() ? "" : a.error().message());
    return {a.bytes().begin(), a.bytes().end()};
}

struct DecodedPkgLength {
    std::size_t value = 0;  // counts the PkgLength bytes themselves
    std::size_t size = 0;   // number of PkgLength bytes
};

// An independent PkgLength decoder, straight from ACPI 6.4 §20.2.4.
DecodedPkgLength decode_pkg_length(std::span<const std::uint8_t> b) {
    const std::size_t follow = b[0] >> 6;
    if (follow == 0) {
        return {b[0] & 0x3Fu, 1};
    }
    EXPECT_EQ(b[0] & 0x30, 0) << "bits 5:4 must be zero in a multi-byte PkgLength";
    std::size_t value = b[0] & 0x0Fu;
    for (std::size_t i = 1; i <= follow; ++i) {
        value |= std::size_t{b[i]} << (4 + 8 * (i - 1));
    }
    return {value, follow + 1};
}

TEST(AmlPkgLength, BoundariesRoundTrip) {
    struct Case {
        std::size_t payload;
        std::size_t expected_size;
    };
    // Thresholds on the total (payload + PkgLength bytes): 1 byte < 0x40, 2 bytes <= 0xFFF,
    // 3 bytes <= 0xFFFFF, 4 bytes <= 0xFFFFFFF. Payloads 0x3F and 0xFFE are the cases where the
    // extra length byte pushes the total over a threshold.
    const Case cases[] = {
        {0, 1},       {1, 1},       {0x3D, 1},    {0x3E, 1},    {0x3F, 2},     {0x40, 2},
        {0x41, 2},    {0xFFC, 2},   {0xFFD, 2},   {0xFFE, 3},   {0xFFF, 3},    {0x1000, 3},
        {0xFFFFC, 3}, {0xFFFFD, 4}, {0xFFFFE, 4}, {0xFFFFF, 4}, {0x100000, 4}, {0xFFFFFFB, 4},
    };
    for (const auto& c : cases) {
        auto enc = encode_pkg_length(c.payload);
        ASSERT_TRUE(enc.ok()) << std::hex << c.payload;
        const auto d = decode_pkg_length(*enc);
        EXPECT_EQ(enc->size(), c.expected_size) << std::hex << c.payload;
        EXPECT_EQ(d.size, enc->size()) << std::hex << c.payload;
        EXPECT_EQ(d.value, c.payload + enc->size()) << std::hex << c.payload;
    }
    EXPECT_FALSE(encode_pkg_length(0xFFFFFFC).ok());  // total would be 2^28
}

TEST(AmlPkgLength, ExactEncodings) {
    EXPECT_EQ(*encode_pkg_length(0), Bytes{0x01});
    EXPECT_EQ(*encode_pkg_length(0x3E), Bytes{0x3F});
    // Total 0x41: count 1 in bits 7:6, low nibble 1, then 0x04.
    EXPECT_EQ(*encode_pkg_length(0x3F), (Bytes{0x41, 0x04}));
    // Total 0xFFF: the largest 2-byte value.
    EXPECT_EQ(*encode_pkg_length(0xFFD), (Bytes{0x4F, 0xFF}));
    // Total 0x1001.
    EXPECT_EQ(*encode_pkg_length(0xFFE), (Bytes{0x81, 0x00, 0x01}));
    // Total 0x100004.
    EXPECT_EQ(*encode_pkg_length(0x100000), (Bytes{0xC4, 0x00, 0x00, 0x01}));
}

TEST(AmlInteger, PicksShortestEncoding) {
    EXPECT_EQ(bytes(Aml::integer(0)), Bytes{0x00});
    EXPECT_EQ(bytes(Aml::integer(1)), Bytes{0x01});
    EXPECT_EQ(bytes(Aml::integer(2)), (Bytes{0x0A, 0x02}));
    EXPECT_EQ(bytes(Aml::integer(0xFF)), (Bytes{0x0A, 0xFF}));
    EXPECT_EQ(bytes(Aml::integer(0x100)), (Bytes{0x0B, 0x00, 0x01}));
    EXPECT_EQ(bytes(Aml::integer(0xFFFF)), (Bytes{0x0B, 0xFF, 0xFF}));
    EXPECT_EQ(bytes(Aml::integer(0x10000)), (Bytes{0x0C, 0x00, 0x00, 0x01, 0x00}));
    EXPECT_EQ(bytes(Aml::integer(0xFFFFFFFF)), (Bytes{0x0C, 0xFF, 0xFF, 0xFF, 0xFF}));
    EXPECT_EQ(bytes(Aml::integer(0x0102030405060708)),
              (Bytes{0x0E, 0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01}));
}

TEST(AmlNameString, SegmentsAndPrefixes) {
    EXPECT_EQ(*encode_name_string("_HID"), (Bytes{'_', 'H', 'I', 'D'}));
    EXPECT_EQ(*encode_name_string("_SB"), (Bytes{'_', 'S', 'B', '_'}));  // padded
    EXPECT_EQ(*encode_name_string("\\_SB_"), (Bytes{0x5C, '_', 'S', 'B', '_'}));
    EXPECT_EQ(*encode_name_string("_SB_.COM1"),
              (Bytes{0x2E, '_', 'S', 'B', '_', 'C', 'O', 'M', '1'}));
    EXPECT_EQ(*encode_name_string("\\_SB_.PCI0.ISA"),
              (Bytes{0x5C, 0x2F, 3, '_', 'S', 'B', '_', 'P', 'C', 'I', '0', 'I', 'S', 'A', '_'}));
    EXPECT_EQ(*encode_name_string("^^DEV"), (Bytes{0x5E, 0x5E, 'D', 'E', 'V', '_'}));
    EXPECT_EQ(*encode_name_string("\\"), (Bytes{0x5C, 0x00}));
}

TEST(AmlNameString, RejectsInvalidNames) {
    EXPECT_FALSE(encode_name_string("").ok());
    EXPECT_FALSE(encode_name_string("TOOLONG").ok());
    EXPECT_FALSE(encode_name_string("1ABC").ok());  // digit cannot lead
    EXPECT_FALSE(encode_name_string("com1").ok());  // lowercase
    EXPECT_FALSE(encode_name_string("_SB_..COM1").ok());
    EXPECT_FALSE(encode_name_string("_SB_.").ok());
    EXPECT_FALSE(Aml::name_string("A B").ok());
}

TEST(AmlString, NullTerminated) {
    EXPECT_EQ(bytes(Aml::string("ab")), (Bytes{0x0D, 'a', 'b', 0x00}));
    EXPECT_EQ(bytes(Aml::string("")), (Bytes{0x0D, 0x00}));
    EXPECT_FALSE(Aml::string("\xff").ok());
}

TEST(AmlEisaId, KnownValues) {
    EXPECT_EQ(*compress_eisa_id("PNP0501"), 0x0105D041U);
    EXPECT_EQ(*compress_eisa_id("PNP0A03"), 0x030AD041U);
    EXPECT_EQ(*compress_eisa_id("PNP0C0F"), 0x0F0CD041U);
    EXPECT_EQ(bytes(Aml::eisa_id("PNP0501")), (Bytes{0x0C, 0x41, 0xD0, 0x05, 0x01}));
    EXPECT_FALSE(compress_eisa_id("PNP050").ok());
    EXPECT_FALSE(compress_eisa_id("pnp0501").ok());
    EXPECT_FALSE(compress_eisa_id("PNP05G1").ok());
    EXPECT_FALSE(Aml::eisa_id("PNP05011").ok());
}

TEST(AmlName, DeviceWithHid) {
    // Device(COM1) { Name(_HID, EisaId("PNP0501")) }: payload = NameSeg 4 + NameOp 1 +
    // NameSeg 4 + DWordConst 5 = 14, so PkgLength = 15.
    const Bytes expected{0x5B, 0x82, 0x0F, 'C',  'O',  'M',  '1',  0x08, '_',
                         'H',  'I',  'D',  0x0C, 0x41, 0xD0, 0x05, 0x01};
    EXPECT_EQ(bytes(Aml::device("COM1", {Aml::name("_HID", Aml::eisa_id("PNP0501"))})), expected);
}

TEST(AmlScope, LargeBodyUsesTwoBytePkgLength) {
    std::vector<Aml> terms;
    for (int i = 0; i < 20; ++i) {
        terms.push_back(Aml::name("X", Aml::integer(0x1000)));  // 8 bytes each
    }
    const auto b = bytes(Aml::scope("\\_SB_", terms));
    ASSERT_GT(b.size(), 3U);
    EXPECT_EQ(b[0], 0x10);
    const auto len = decode_pkg_length(std::span(b).subspan(1));
    EXPECT_EQ(len.size, 2U);
    EXPECT_EQ(len.value, b.size() - 1);  // everything after the ScopeOp byte
    EXPECT_EQ(b[1 + len.size], 0x5C);
}

TEST(AmlMethod, ReturnsConstant) {
    // Method(_STA, 0, NotSerialized) { Return (0x0F) }, as iASL compiles it.
    EXPECT_EQ(bytes(Aml::method("_STA", 0, false, {Aml::return_value(Aml::integer(0x0F))})),
              (Bytes{0x14, 0x09, '_', 'S', 'T', 'A', 0x00, 0xA4, 0x0A, 0x0F}));
    const auto serialized = bytes(Aml::method("FOO", 3, true, {}));
    EXPECT_EQ(serialized, (Bytes{0x14, 0x06, 'F', 'O', 'O', '_', 0x0B}));
    EXPECT_FALSE(Aml::method("FOO", 8, false, {}).ok());
}

TEST(AmlPackage, CountsElements) {
    EXPECT_EQ(bytes(Aml::package({Aml::integer(1), Aml::integer(2)})),
              (Bytes{0x12, 0x05, 0x02, 0x01, 0x0A, 0x02}));
    EXPECT_FALSE(Aml::package(std::vector<Aml>(256, Aml::integer(0))).ok());
    EXPECT_TRUE(Aml::package(std::vector<Aml>(255, Aml::integer(0))).ok());
}

TEST(AmlBuffer, SizeThenBytes) {
    const Bytes data{1, 2, 3};
    EXPECT_EQ(bytes(Aml::buffer(data)), (Bytes{0x11, 0x06, 0x0A, 0x03, 1, 2, 3}));
    EXPECT_EQ(bytes(Aml::buffer({})), (Bytes{0x11, 0x02, 0x00}));
}

TEST(AmlResource, Descriptors) {
    EXPECT_EQ(io_port_descriptor(true, 0x3F8, 0x3F8, 1, 8),
              (Bytes{0x47, 0x01, 0xF8, 0x03, 0xF8, 0x03, 0x01, 0x08}));
    EXPECT_EQ(irq_no_flags_descriptor(1 << 4), (Bytes{0x22, 0x10, 0x00}));
    EXPECT_EQ(memory32_fixed_descriptor(true, 0xFED00000, 0x400),
              (Bytes{0x86, 0x09, 0x00, 0x01, 0x00, 0x00, 0xD0, 0xFE, 0x00, 0x04, 0x00, 0x00}));
    EXPECT_EQ(end_tag_descriptor(), (Bytes{0x79, 0x00}));
}

TEST(AmlResource, AddressSpaceDescriptors) {
    // WordBusNumber(ResourceProducer, MinFixed, MaxFixed, PosDecode, 0, 0x00, 0xFF, 0, 0x100).
    EXPECT_EQ(word_address_space_descriptor(AddressSpaceType::BusNumber, false, 0, 0x00, 0xFF),
              (Bytes{0x88, 0x0D, 0x00, 0x02, 0x0C, 0x00, 0x00, 0x00, 0x00, 0x00, 0xFF, 0x00, 0x00,
                     0x00, 0x00, 0x01}));
    // WordIO(ResourceProducer, MinFixed, MaxFixed, PosDecode, EntireRange, 0, 0xD00, 0xFFFF,
    // 0, 0xF300).
    EXPECT_EQ(
        word_address_space_descriptor(AddressSpaceType::Io, false, kIoEntireRange, 0x0D00, 0xFFFF),
        (Bytes{0x88, 0x0D, 0x00, 0x01, 0x0C, 0x03, 0x00, 0x00, 0x00, 0x0D, 0xFF, 0xFF, 0x00, 0x00,
               0x00, 0xF3}));
    // DWordMemory(ResourceProducer, PosDecode, MinFixed, MaxFixed, NonCacheable, ReadWrite, 0,
    // 0xC0000000, 0xDFFFFFFF, 0, 0x20000000).
    EXPECT_EQ(
        dword_address_space_descriptor(AddressSpaceType::Memory, false, kMemoryReadWrite,
                                       0xC0000000, 0xDFFFFFFF),
        (Bytes{0x87, 0x17, 0x00, 0x00, 0x0C, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
               0xC0, 0xFF, 0xFF, 0xFF, 0xDF, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x20}));
    // QWordMemory(ResourceConsumer, ..., 0x1000000000, 0x1FFFFFFFFF, 0, 0x1000000000).
    const Bytes q = qword_address_space_descriptor(AddressSpaceType::Memory, true, kMemoryReadWrite,
                                                   0x10'0000'0000, 0x1F'FFFF'FFFF);
    const Bytes head{0x8A, 0x2B, 0x00, 0x00, 0x0D, 0x01};
    ASSERT_EQ(q.size(), 46U);
    EXPECT_TRUE(std::equal(head.begin(), head.end(), q.begin()));
    const Bytes fields{
        0,    0,    0,    0,    0,    0,    0,    0,     // granularity
        0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00,  // min
        0xFF, 0xFF, 0xFF, 0xFF, 0x1F, 0x00, 0x00, 0x00,  // max
        0,    0,    0,    0,    0,    0,    0,    0,     // translation
        0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00,  // length
    };
    EXPECT_TRUE(std::equal(fields.begin(), fields.end(), q.begin() + 6));
}

TEST(AmlResource, TemplateIsBufferWithEndTag) {
    // ResourceTemplate() { IO(Decode16, 0x3F8, 0x3F8, 0x01, 0x08) IRQNoFlags() {4} }
    const Bytes expected{0x11, 0x10, 0x0A, 0x0D, 0x47, 0x01, 0xF8, 0x03, 0xF8,
                         0x03, 0x01, 0x08, 0x22, 0x10, 0x00, 0x79, 0x00};
    EXPECT_EQ(bytes(Aml::resource_template(
                  {io_port_descriptor(true, 0x3F8, 0x3F8, 1, 8), irq_no_flags_descriptor(1 << 4)})),
              expected);
}

TEST(AmlResource, ExtendedInterruptDescriptor) {
    // Interrupt(ResourceConsumer, Edge, ActiveHigh, Exclusive, , , ) {5}
    EXPECT_EQ(extended_interrupt_descriptor(true, false, false, 5),
              (Bytes{0x89, 0x06, 0x00, 0x03, 0x01, 0x05, 0x00, 0x00, 0x00}));
    // Interrupt(ResourceConsumer, Level, ActiveLow, Shared, , , ) {0x123456}
    EXPECT_EQ(extended_interrupt_descriptor(false, true, true, 0x123456),
              (Bytes{0x89, 0x06, 0x00, 0x0D, 0x01, 0x56, 0x34, 0x12, 0x00}));
}

TEST(AmlStatement, ArgLEqualIfNotify) {
    EXPECT_EQ(bytes(Aml::arg(0)), Bytes{0x68});
    EXPECT_EQ(bytes(Aml::arg(6)), Bytes{0x6E});
    EXPECT_FALSE(Aml::arg(7).ok());
    EXPECT_EQ(bytes(Aml::lequal(Aml::arg(0), Aml::integer(0x17))), (Bytes{0x93, 0x68, 0x0A, 0x17}));
    const Bytes notify{0x86, 0x5C, 0x2E, '_', 'S', 'B', '_', 'V', 'G', 'E', 'N', 0x0A, 0x80};
    EXPECT_EQ(bytes(Aml::notify("\\_SB_.VGEN", Aml::integer(0x80))), notify);
    EXPECT_FALSE(Aml::notify("\\_SB_.TOOLONG", Aml::integer(0x80)).ok());
    // If (LEqual (Arg0, 0x17)) { Notify (\_SB_.VGEN, 0x80) }: IfOp, PkgLength 1 + 4 + 13.
    Bytes expected{0xA0, 0x12, 0x93, 0x68, 0x0A, 0x17};
    expected.insert(expected.end(), notify.begin(), notify.end());
    EXPECT_EQ(bytes(Aml::if_then(Aml::lequal(Aml::arg(0), Aml::integer(0x17)),
                                 {Aml::notify("\\_SB_.VGEN", Aml::integer(0x80))})),
              expected);
    EXPECT_FALSE(Aml::if_then(Aml::arg(9), {}).ok());
}

TEST(AmlErrors, PropagateToTheEnclosingTerm) {
    const auto bad = Aml::scope("\\_SB_", {Aml::device("COM10", {})});
    EXPECT_FALSE(bad.ok());
    EXPECT_TRUE(bad.bytes().empty());
    Aml list;
    list.append(Aml::integer(5)).append(bad).append(Aml::integer(6));
    EXPECT_FALSE(list.ok());
    auto r = std::move(list).into_bytes();
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message().find("COM10"), std::string::npos);
}

}  // namespace
}  // namespace vireo::acpi
