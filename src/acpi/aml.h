// A small AML (ACPI Machine Language) bytecode builder: just the terms a DSDT for a simple x86-64
// guest needs (ACPI 6.4 §20 grammar, §19.6 for the ASL operators they come from). Not a compiler.
//
// An Aml value is a byte string holding zero or more encoded terms. Invalid input (a bad name, a
// package too large to encode) does not abort: the value carries the first Error instead of
// bytes, and every term built from it inherits that Error, so a whole definition block is checked
// once at the end through into_bytes().
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace vireo::acpi {

// PkgLength (§20.2.4) for a package whose contents after the PkgLength field are
// `payload_length` bytes. The encoded value counts the PkgLength bytes themselves: one byte when
// that total is < 0x40, else 2-4 bytes (byte 0 bits 7:6 = number of following bytes, bits 3:0 =
// total bits 3:0, following bytes = total bits 11:4, 19:12, 27:20). Error past 2^28 - 1.
Result<std::vector<std::uint8_t>> encode_pkg_length(std::size_t payload_length);

// NameString (§20.2.2): optional root '\' or parent '^' prefixes, then dot-separated NameSegs of
// 1-4 characters ([A-Z_][A-Z0-9_]*, padded with '_'). "\\_SB_" -> 5C "_SB_";
// "_SB_.COM1" -> 2E "_SB_" "COM1" (DualNamePrefix); 3+ segments use MultiNamePrefix 2F count.
Result<std::vector<std::uint8_t>> encode_name_string(std::string_view path);

// EISAID compression (§19.6.43): "PNP0501" -> 0x0105D041. Three uppercase letters as 5-bit
// values (letter - 0x40) packed into bits 30:16, four hex digits in bits 15:0, then byte-swapped.
Result<std::uint32_t> compress_eisa_id(std::string_view id);

class Aml {
public:
    Aml() = default;  // An empty TermList.

    // Data objects (§20.2.3). integer() picks the shortest encoding: ZeroOp 00, OneOp 01,
    // BytePrefix 0A, WordPrefix 0B, DWordPrefix 0C, QWordPrefix 0E.
    static Aml integer(std::uint64_t value);
    // String: 0D, ASCII characters 0x01-0x7F, 00.
    static Aml string(std::string_view text);
    // EisaId("...") as an integer; always a DWordConst (0C), as iASL emits it.
    static Aml eisa_id(std::string_view id);
    static Aml name_string(std::string_view path);
    // PackageOp 12 PkgLength NumElements(byte) PackageElementList (§20.2.5.4); up to 255 elements.
    static Aml package(const std::vector<Aml>& elements);
    // BufferOp 11 PkgLength BufferSize(integer) ByteList (§20.2.5.4).
    static Aml buffer(std::span<const std::uint8_t> bytes);
    // ResourceTemplate() (§19.3.3): a Buffer holding the descriptors followed by an End Tag.
    static Aml resource_template(const std::vector<std::vector<std::uint8_t>>& descriptors);

    // Namespace modifiers and named objects (§20.2.5.1, §20.2.5.2).
    // NameOp 08 NameString DataRefObject.
    static Aml name(std::string_view path, const Aml& object);
    // ScopeOp 10 PkgLength NameString TermList.
    static Aml scope(std::string_view path, const std::vector<Aml>& terms);
    // DeviceOp 5B 82 PkgLength NameString TermList.
    static Aml device(std::string_view path, const std::vector<Aml>& terms);
    // MethodOp 14 PkgLength NameString MethodFlags TermList. MethodFlags: bits 2:0 ArgCount
    // (0-7), bit 3 SerializeFlag, bits 7:4 SyncLevel (left 0).
    static Aml method(std::string_view path, std::uint8_t arg_count, bool serialized,
                      const std::vector<Aml>& terms);
    // ReturnOp A4 ArgObject (§20.2.5.3).
    static Aml return_value(const Aml& value);
    // DefIfElse without an Else (§20.2.5.3): IfOp A0 PkgLength Predicate TermList.
    static Aml if_then(const Aml& predicate, const std::vector<Aml>& terms);
    // DefNotify (§20.2.5.3): NotifyOp 86 NotifyObject NotifyValue. `path` names the object
    // notified (a SuperName, here always a NameString); `value` is the notification code.
    static Aml notify(std::string_view path, const Aml& value);
    // DefLEqual (§20.2.5.4): LEqualOp 93 Operand Operand.
    static Aml lequal(const Aml& left, const Aml& right);
    // ArgObj (§20.2.6.1): Arg0Op 68 .. Arg6Op 6E, the method's n-th argument (n <= 6).
    static Aml arg(std::uint8_t n);

    // Appends `term` to this TermList (no-op once either side carries an error).
    Aml& append(const Aml& term);

    bool ok() const { return !m_error.has_value(); }
    const Error& error() const { return *m_error; }
    // The encoded bytes; empty when !ok().
    std::span<const std::uint8_t> bytes() const { return m_bytes; }
    Result<std::vector<std::uint8_t>> into_bytes() &&;

    // A term that only carries `error` (a description its builder refused).
    static Aml failed(Error error);

private:
    static Aml raw(std::vector<std::uint8_t> bytes);
    static Aml from(Result<std::vector<std::uint8_t>> bytes);
    // `opcode` PkgLength `payload`: the shape shared by Scope, Device, Method, Package, Buffer.
    static Aml with_pkg_length(std::initializer_list<std::uint8_t> opcode, const Aml& payload);
    static Aml term_list(const std::vector<Aml>& terms);

    std::vector<std::uint8_t> m_bytes;
    std::optional<Error> m_error;
};

// Small resource data type descriptors (§6.4.2), the contents of a ResourceTemplate buffer.
// I/O Port Descriptor (§6.4.2.5), 8 bytes: 47, information (bit 0: 1 = 16-bit decode),
// range minimum base u16, range maximum base u16, base alignment u8, range length u8.
std::vector<std::uint8_t> io_port_descriptor(bool decode16, std::uint16_t min, std::uint16_t max,
                                             std::uint8_t alignment, std::uint8_t length);
// IRQ Descriptor without the optional flags byte (§6.4.2.1), 3 bytes: 22, IRQ mask u16 (bit n =
// IRQ n). Edge-triggered, active-high, exclusive is implied.
std::vector<std::uint8_t> irq_no_flags_descriptor(std::uint16_t irq_mask);
// 32-Bit Fixed Memory Range Descriptor (§6.4.3.4), a large item of 12 bytes: 86, length u16 = 9,
// information (bit 0: 1 = read-write), base u32, range length u32.
std::vector<std::uint8_t> memory32_fixed_descriptor(bool writable, std::uint32_t base,
                                                    std::uint32_t length);

// Extended Interrupt Descriptor (§6.4.3.6), a large item: 89, length u16 = 6, interrupt vector
// flags, interrupt table length u8 = 1, the interrupt number u32; no resource source. Flags:
// bit 0 1 = consumer (always: a device's _CRS), bit 1 _HE (1 = edge, 0 = level), bit 2 _LL
// (1 = active-low, 0 = active-high), bit 3 _SHR (1 = shared), bit 4 _WKC (0 = not wake capable).
// What iASL emits for Interrupt(ResourceConsumer, Edge|Level, ActiveHigh|ActiveLow,
// Exclusive|Shared, , , ) {interrupt}. On x86 the number is a GSI.
std::vector<std::uint8_t> extended_interrupt_descriptor(bool edge, bool active_low, bool shared,
                                                        std::uint32_t interrupt);

// Address Space Descriptors (§6.4.3.5): the windows a bridge produces or the ranges a device
// consumes. Each is emitted with _MIF and _MAF set (fixed range), positive decode, granularity
// 0, translation offset 0 and _LEN = max - min + 1, without a resource source (what iASL emits
// for e.g. WordBusNumber(ResourceProducer, MinFixed, MaxFixed, PosDecode, 0, min, max, 0, len)).
// Layout: tag, length u16, resource type, general flags (bit 3 _MAF, bit 2 _MIF, bit 1 _DEC,
// bit 0 1 = consumer), type-specific flags, then granularity, min, max, translation, length.
enum class AddressSpaceType : std::uint8_t { Memory = 0, Io = 1, BusNumber = 2 };
// Type-specific flags (§6.4.3.5.4 Table 6.50, §6.4.3.5.5 Table 6.51).
inline constexpr std::uint8_t kMemoryReadWrite = 0x01;  // _RW; _MEM bits 2:1 = 0 non-cacheable
inline constexpr std::uint8_t kIoEntireRange = 0x03;    // _RNG: ISA and non-ISA ranges
// Word (§6.4.3.5.3): tag 0x88, 16 bytes. e.g. WordBusNumber, WordIO.
std::vector<std::uint8_t> word_address_space_descriptor(AddressSpaceType type, bool consumer,
                                                        std::uint8_t type_flags, std::uint16_t min,
                                                        std::uint16_t max);
// DWord (§6.4.3.5.2): tag 0x87, 26 bytes. e.g. DWordMemory.
std::vector<std::uint8_t> dword_address_space_descriptor(AddressSpaceType type, bool consumer,
                                                         std::uint8_t type_flags, std::uint32_t min,
                                                         std::uint32_t max);
// QWord (§6.4.3.5.1): tag 0x8A, 46 bytes. e.g. QWordMemory.
std::vector<std::uint8_t> qword_address_space_descriptor(AddressSpaceType type, bool consumer,
                                                         std::uint8_t type_flags, std::uint64_t min,
                                                         std::uint64_t max);
// End Tag (§6.4.2.9): 79, checksum 00 (zero means "treat the template as checksummed").
std::vector<std::uint8_t> end_tag_descriptor();

}  // namespace vireo::acpi
