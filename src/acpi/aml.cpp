#include "acpi/aml.h"

#include <fmt/format.h>

#include "acpi/byte_writer.h"

namespace vireo::acpi {

namespace {

// Opcodes and prefixes, ACPI 6.4 §20.2.
constexpr std::uint8_t kZeroOp = 0x00;            // §20.2.3 ConstObj
constexpr std::uint8_t kOneOp = 0x01;             // §20.2.3 ConstObj
constexpr std::uint8_t kNameOp = 0x08;            // §20.2.5.1 DefName
constexpr std::uint8_t kBytePrefix = 0x0A;        // §20.2.3 ByteConst
constexpr std::uint8_t kWordPrefix = 0x0B;        // §20.2.3 WordConst
constexpr std::uint8_t kDWordPrefix = 0x0C;       // §20.2.3 DWordConst
constexpr std::uint8_t kStringPrefix = 0x0D;      // §20.2.3 String
constexpr std::uint8_t kQWordPrefix = 0x0E;       // §20.2.3 QWordConst
constexpr std::uint8_t kScopeOp = 0x10;           // §20.2.5.1 DefScope
constexpr std::uint8_t kBufferOp = 0x11;          // §20.2.5.4 DefBuffer
constexpr std::uint8_t kPackageOp = 0x12;         // §20.2.5.4 DefPackage
constexpr std::uint8_t kMethodOp = 0x14;          // §20.2.5.2 DefMethod
constexpr std::uint8_t kNullName = 0x00;          // §20.2.2
constexpr std::uint8_t kDualNamePrefix = 0x2E;    // §20.2.2
constexpr std::uint8_t kMultiNamePrefix = 0x2F;   // §20.2.2
constexpr std::uint8_t kExtOpPrefix = 0x5B;       // §20.2.5.2
constexpr std::uint8_t kDeviceOp = 0x82;          // §20.2.5.2 DefDevice: ExtOpPrefix 0x82
constexpr std::uint8_t kRootChar = 0x5C;          // '\' §20.2.2
constexpr std::uint8_t kParentPrefixChar = 0x5E;  // '^' §20.2.2
constexpr std::uint8_t kReturnOp = 0xA4;          // §20.2.5.3 DefReturn
constexpr std::uint8_t kIfOp = 0xA0;              // §20.2.5.3 DefIfElse
constexpr std::uint8_t kNotifyOp = 0x86;          // §20.2.5.3 DefNotify
constexpr std::uint8_t kLEqualOp = 0x93;          // §20.2.5.4 DefLEqual
constexpr std::uint8_t kArg0Op = 0x68;            // §20.2.6.1 Arg0Op; Arg1Op..Arg6Op follow
constexpr std::uint8_t kMaxArg = 6;

// Small resource item tags (§6.4.2): byte 0 = tag << 3 | length.
constexpr std::uint8_t kIrqNoFlagsTag = 0x22;  // type 0x04, length 2
constexpr std::uint8_t kIoPortTag = 0x47;      // type 0x08, length 7
constexpr std::uint8_t kEndTag = 0x79;         // type 0x0F, length 1
// Large resource item (§6.4.3): bit 7 set, type 0x06 = 32-bit fixed memory range.
constexpr std::uint8_t kMemory32FixedTag = 0x86;
// Large resource items, address space descriptors (§6.4.3.5).
constexpr std::uint8_t kDWordAddressSpaceTag = 0x87;
constexpr std::uint8_t kWordAddressSpaceTag = 0x88;
constexpr std::uint8_t kQWordAddressSpaceTag = 0x8A;
// Large resource item (§6.4.3.6): type 0x09 = extended interrupt.
constexpr std::uint8_t kExtendedInterruptTag = 0x89;
constexpr std::uint8_t kInterruptConsumer = 1U << 0;   // flags: consumer (0 = producer)
constexpr std::uint8_t kInterruptEdge = 1U << 1;       // flags: _HE
constexpr std::uint8_t kInterruptActiveLow = 1U << 2;  // flags: _LL
constexpr std::uint8_t kInterruptShared = 1U << 3;     // flags: _SHR
constexpr std::uint8_t kAddressMinFixed = 1U << 2;     // general flags: _MIF
constexpr std::uint8_t kAddressMaxFixed = 1U << 3;     // general flags: _MAF
constexpr std::uint8_t kAddressConsumer = 1U << 0;     // general flags: consumer (0 = producer)

constexpr std::size_t kMaxPackageElements = 255;  // NumElements is a ByteData

bool is_lead_name_char(char c) {
    return (c >= 'A' && c <= 'Z') || c == '_';
}

bool is_name_char(char c) {
    return is_lead_name_char(c) || (c >= '0' && c <= '9');
}

// NameSeg (§20.2.2): LeadNameChar NameChar NameChar NameChar, short names padded with '_'.
Result<void> append_name_seg(std::vector<std::uint8_t>& out, std::string_view seg) {
    if (seg.empty() || seg.size() > 4 || !is_lead_name_char(seg[0])) {
        return Error(fmt::format("aml: invalid name segment '{}'", seg));
    }
    for (char c : seg) {
        if (!is_name_char(c)) {
            return Error(fmt::format("aml: invalid name segment '{}'", seg));
        }
        out.push_back(static_cast<std::uint8_t>(c));
    }
    for (std::size_t i = seg.size(); i < 4; ++i) {
        out.push_back('_');
    }
    return ok();
}

int hex_digit(char c) {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

// The common shape of the Word/DWord/QWord Address Space Descriptors: five T-sized fields after
// the three flag bytes; the length field counts the bytes after itself.
template <typename T>
std::vector<std::uint8_t> address_space_descriptor(std::uint8_t tag, AddressSpaceType type,
                                                   bool consumer, std::uint8_t type_flags, T min,
                                                   T max) {
    std::vector<std::uint8_t> out{tag};
    append_le(out, static_cast<std::uint16_t>(3 + 5 * sizeof(T)));
    out.push_back(static_cast<std::uint8_t>(type));
    out.push_back(static_cast<std::uint8_t>(kAddressMinFixed | kAddressMaxFixed |
                                            (consumer ? kAddressConsumer : 0)));
    out.push_back(type_flags);
    append_le(out, T{0});                           // _GRA
    append_le(out, min);                            // _MIN
    append_le(out, max);                            // _MAX
    append_le(out, T{0});                           // _TRA
    append_le(out, static_cast<T>(max - min + 1));  // _LEN (0 for a full 2^n range: unused)
    return out;
}

}  // namespace

Result<std::vector<std::uint8_t>> encode_pkg_length(std::size_t payload_length) {
    // n PkgLength bytes carry 6 bits (n = 1) or 4 + 8 * (n - 1) bits (n = 2..4). The value
    // includes the n bytes themselves, so pick the smallest n with payload + n representable.
    for (std::size_t n = 1; n <= 4; ++n) {
        const std::size_t max_total = n == 1 ? 0x3F : (std::size_t{1} << (4 + 8 * (n - 1))) - 1;
        if (payload_length > max_total - n) {
            continue;
        }
        const std::size_t total = payload_length + n;
        std::vector<std::uint8_t> out;
        if (n == 1) {
            out.push_back(static_cast<std::uint8_t>(total));
            return out;
        }
        out.push_back(static_cast<std::uint8_t>(((n - 1) << 6) | (total & 0x0F)));
        for (std::size_t i = 1; i < n; ++i) {
            out.push_back(static_cast<std::uint8_t>(total >> (4 + 8 * (i - 1))));
        }
        return out;
    }
    return Error(fmt::format("aml: package of {:#x} bytes exceeds PkgLength", payload_length));
}

Result<std::vector<std::uint8_t>> encode_name_string(std::string_view path) {
    if (path.empty()) {
        return Error("aml: empty name");
    }
    std::vector<std::uint8_t> out;
    // NameString := <RootChar NamePath> | <PrefixPath NamePath>; PrefixPath := Nothing | '^' ...
    std::size_t pos = 0;
    if (path[0] == '\\') {
        out.push_back(kRootChar);
        pos = 1;
    } else {
        while (pos < path.size() && path[pos] == '^') {
            out.push_back(kParentPrefixChar);
            ++pos;
        }
    }
    const std::string_view rest = path.substr(pos);
    if (rest.empty()) {
        out.push_back(kNullName);  // "\" alone names the root
        return out;
    }
    std::vector<std::string_view> segs;
    for (std::size_t start = 0;;) {
        const std::size_t dot = rest.find('.', start);
        segs.push_back(rest.substr(start, dot == std::string_view::npos ? dot : dot - start));
        if (dot == std::string_view::npos) {
            break;
        }
        start = dot + 1;
    }
    if (segs.size() == 2) {
        out.push_back(kDualNamePrefix);
    } else if (segs.size() > 2) {
        if (segs.size() > 255) {
            return Error("aml: name has more than 255 segments");
        }
        out.push_back(kMultiNamePrefix);
        out.push_back(static_cast<std::uint8_t>(segs.size()));  // SegCount
    }
    for (auto seg : segs) {
        if (auto r = append_name_seg(out, seg); !r) {
            return r.error();
        }
    }
    return out;
}

Result<std::uint32_t> compress_eisa_id(std::string_view id) {
    if (id.size() != 7) {
        return Error(fmt::format("aml: EISA id '{}' is not 7 characters", id));
    }
    std::uint32_t v = 0;
    for (std::size_t i = 0; i < 3; ++i) {
        if (id[i] < 'A' || id[i] > 'Z') {
            return Error(fmt::format("aml: EISA id '{}' must start with 3 uppercase letters", id));
        }
        v = (v << 5) | static_cast<std::uint32_t>(id[i] - 0x40);
    }
    for (std::size_t i = 3; i < 7; ++i) {
        const int d = hex_digit(id[i]);
        if (d < 0) {
            return Error(fmt::format("aml: EISA id '{}' must end with 4 hex digits", id));
        }
        v = (v << 4) | static_cast<std::uint32_t>(d);
    }
    // v now holds the id big-endian (letters in bits 30:16); the AML integer is byte-swapped.
    return ((v & 0xFF) << 24) | ((v & 0xFF00) << 8) | ((v >> 8) & 0xFF00) | (v >> 24);
}

Aml Aml::failed(Error error) {
    Aml a;
    a.m_error = std::move(error);
    return a;
}

Aml Aml::raw(std::vector<std::uint8_t> bytes) {
    Aml a;
    a.m_bytes = std::move(bytes);
    return a;
}

Aml Aml::from(Result<std::vector<std::uint8_t>> bytes) {
    if (!bytes) {
        return failed(bytes.error());
    }
    return raw(std::move(bytes).value());
}

Aml& Aml::append(const Aml& term) {
    if (!ok()) {
        return *this;
    }
    if (!term.ok()) {
        m_error = term.m_error;
        m_bytes.clear();
        return *this;
    }
    m_bytes.insert(m_bytes.end(), term.m_bytes.begin(), term.m_bytes.end());
    return *this;
}

Result<std::vector<std::uint8_t>> Aml::into_bytes() && {
    if (!ok()) {
        return *m_error;
    }
    return std::move(m_bytes);
}

Aml Aml::term_list(const std::vector<Aml>& terms) {
    Aml list;
    for (const auto& t : terms) {
        list.append(t);
    }
    return list;
}

Aml Aml::with_pkg_length(std::initializer_list<std::uint8_t> opcode, const Aml& payload) {
    if (!payload.ok()) {
        return payload;
    }
    auto len = encode_pkg_length(payload.m_bytes.size());
    if (!len) {
        return failed(len.error());
    }
    std::vector<std::uint8_t> out(opcode);
    out.insert(out.end(), len->begin(), len->end());
    out.insert(out.end(), payload.m_bytes.begin(), payload.m_bytes.end());
    return raw(std::move(out));
}

Aml Aml::integer(std::uint64_t value) {
    std::vector<std::uint8_t> out;
    if (value == 0) {
        out.push_back(kZeroOp);
    } else if (value == 1) {
        out.push_back(kOneOp);
    } else if (value <= 0xFF) {
        out.push_back(kBytePrefix);
        append_le(out, static_cast<std::uint8_t>(value));
    } else if (value <= 0xFFFF) {
        out.push_back(kWordPrefix);
        append_le(out, static_cast<std::uint16_t>(value));
    } else if (value <= 0xFFFFFFFF) {
        out.push_back(kDWordPrefix);
        append_le(out, static_cast<std::uint32_t>(value));
    } else {
        out.push_back(kQWordPrefix);
        append_le(out, value);
    }
    return raw(std::move(out));
}

Aml Aml::string(std::string_view text) {
    std::vector<std::uint8_t> out{kStringPrefix};
    for (char c : text) {
        const auto b = static_cast<std::uint8_t>(c);
        if (b == 0 || b > 0x7F) {  // AsciiCharList: 0x01-0x7F (§20.2.3)
            return failed(Error("aml: string holds a NUL or non-ASCII character"));
        }
        out.push_back(b);
    }
    out.push_back(0x00);  // NullChar
    return raw(std::move(out));
}

Aml Aml::eisa_id(std::string_view id) {
    auto v = compress_eisa_id(id);
    if (!v) {
        return failed(v.error());
    }
    std::vector<std::uint8_t> out{kDWordPrefix};
    append_le(out, *v);
    return raw(std::move(out));
}

Aml Aml::name_string(std::string_view path) {
    return from(encode_name_string(path));
}

Aml Aml::package(const std::vector<Aml>& elements) {
    if (elements.size() > kMaxPackageElements) {
        return failed(Error("aml: package has more than 255 elements"));
    }
    Aml payload = raw({static_cast<std::uint8_t>(elements.size())});  // NumElements
    payload.append(term_list(elements));
    return with_pkg_length({kPackageOp}, payload);
}

Aml Aml::buffer(std::span<const std::uint8_t> bytes) {
    Aml payload = integer(bytes.size());  // BufferSize
    payload.append(raw(std::vector<std::uint8_t>(bytes.begin(), bytes.end())));
    return with_pkg_length({kBufferOp}, payload);
}

Aml Aml::resource_template(const std::vector<std::vector<std::uint8_t>>& descriptors) {
    std::vector<std::uint8_t> contents;
    for (const auto& d : descriptors) {
        contents.insert(contents.end(), d.begin(), d.end());
    }
    const auto end = end_tag_descriptor();
    contents.insert(contents.end(), end.begin(), end.end());
    return buffer(contents);
}

Aml Aml::name(std::string_view path, const Aml& object) {
    Aml out = raw({kNameOp});
    out.append(name_string(path));
    out.append(object);
    return out;
}

Aml Aml::scope(std::string_view path, const std::vector<Aml>& terms) {
    Aml payload = name_string(path);
    payload.append(term_list(terms));
    return with_pkg_length({kScopeOp}, payload);
}

Aml Aml::device(std::string_view path, const std::vector<Aml>& terms) {
    Aml payload = name_string(path);
    payload.append(term_list(terms));
    return with_pkg_length({kExtOpPrefix, kDeviceOp}, payload);
}

Aml Aml::method(std::string_view path, std::uint8_t arg_count, bool serialized,
                const std::vector<Aml>& terms) {
    if (arg_count > 7) {
        return failed(Error(fmt::format("aml: method {} takes {} > 7 arguments", path, arg_count)));
    }
    Aml payload = name_string(path);
    payload.append(raw({static_cast<std::uint8_t>(arg_count | (serialized ? 0x08 : 0x00))}));
    payload.append(term_list(terms));
    return with_pkg_length({kMethodOp}, payload);
}

Aml Aml::return_value(const Aml& value) {
    Aml out = raw({kReturnOp});
    out.append(value);
    return out;
}

Aml Aml::if_then(const Aml& predicate, const std::vector<Aml>& terms) {
    Aml payload = predicate;
    payload.append(term_list(terms));
    return with_pkg_length({kIfOp}, payload);
}

Aml Aml::notify(std::string_view path, const Aml& value) {
    Aml out = raw({kNotifyOp});
    out.append(name_string(path));
    out.append(value);
    return out;
}

Aml Aml::lequal(const Aml& left, const Aml& right) {
    Aml out = raw({kLEqualOp});
    out.append(left);
    out.append(right);
    return out;
}

Aml Aml::arg(std::uint8_t n) {
    if (n > kMaxArg) {
        return failed(Error(fmt::format("aml: Arg{} does not exist (Arg0-Arg6)", n)));
    }
    return raw({static_cast<std::uint8_t>(kArg0Op + n)});
}

std::vector<std::uint8_t> io_port_descriptor(bool decode16, std::uint16_t min, std::uint16_t max,
                                             std::uint8_t alignment, std::uint8_t length) {
    std::vector<std::uint8_t> out{kIoPortTag, static_cast<std::uint8_t>(decode16 ? 1 : 0)};
    append_le(out, min);
    append_le(out, max);
    out.push_back(alignment);
    out.push_back(length);
    return out;
}

std::vector<std::uint8_t> irq_no_flags_descriptor(std::uint16_t irq_mask) {
    std::vector<std::uint8_t> out{kIrqNoFlagsTag};
    append_le(out, irq_mask);
    return out;
}

std::vector<std::uint8_t> extended_interrupt_descriptor(bool edge, bool active_low, bool shared,
                                                        std::uint32_t interrupt) {
    std::vector<std::uint8_t> out{kExtendedInterruptTag};
    append_le(out, std::uint16_t{6});  // flags, table length, one u32: the bytes after this field
    out.push_back(static_cast<std::uint8_t>(kInterruptConsumer | (edge ? kInterruptEdge : 0) |
                                            (active_low ? kInterruptActiveLow : 0) |
                                            (shared ? kInterruptShared : 0)));
    out.push_back(1);  // interrupt table length
    append_le(out, interrupt);
    return out;
}

std::vector<std::uint8_t> memory32_fixed_descriptor(bool writable, std::uint32_t base,
                                                    std::uint32_t length) {
    std::vector<std::uint8_t> out{kMemory32FixedTag};
    append_le(out, std::uint16_t{9});  // length of the data that follows the 3-byte header
    out.push_back(writable ? 1 : 0);
    append_le(out, base);
    append_le(out, length);
    return out;
}

std::vector<std::uint8_t> word_address_space_descriptor(AddressSpaceType type, bool consumer,
                                                        std::uint8_t type_flags, std::uint16_t min,
                                                        std::uint16_t max) {
    return address_space_descriptor(kWordAddressSpaceTag, type, consumer, type_flags, min, max);
}

std::vector<std::uint8_t> dword_address_space_descriptor(AddressSpaceType type, bool consumer,
                                                         std::uint8_t type_flags, std::uint32_t min,
                                                         std::uint32_t max) {
    return address_space_descriptor(kDWordAddressSpaceTag, type, consumer, type_flags, min, max);
}

std::vector<std::uint8_t> qword_address_space_descriptor(AddressSpaceType type, bool consumer,
                                                         std::uint8_t type_flags, std::uint64_t min,
                                                         std::uint64_t max) {
    return address_space_descriptor(kQWordAddressSpaceTag, type, consumer, type_flags, min, max);
}

std::vector<std::uint8_t> end_tag_descriptor() {
    return {kEndTag, 0x00};
}

}  // namespace vireo::acpi
