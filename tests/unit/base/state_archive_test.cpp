#include "base/state_archive.h"

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace vireo {
namespace {

enum class Mode : std::uint8_t { kOff = 0, kOn = 1, kAuto = 7 };
enum class Wide : std::uint32_t { kA = 1, kB = 0xdeadbeef };

struct Inner {
    std::uint16_t id = 0;
    std::string label;
    bool operator==(const Inner&) const = default;
};

template <typename Ar>
void persist(Ar& ar, Inner& s) {
    ar(s.id);
    ar.str(s.label, 16);
}

struct Outer {
    std::uint8_t u8 = 0;
    std::uint32_t u32 = 0;
    std::int64_t i64 = 0;
    bool flag = false;
    bool other = false;
    Mode mode = Mode::kOff;
    Wide wide = Wide::kA;
    std::array<std::uint8_t, 5> raw{};
    std::array<std::uint32_t, 3> regs{};
    std::vector<std::uint8_t> bytes;
    std::vector<std::uint64_t> words;
    std::string name;
    std::optional<std::uint32_t> maybe;
    std::optional<std::uint32_t> none;
    Inner inner;
    std::vector<Inner> inners;
    std::array<Inner, 2> pair{};
    bool operator==(const Outer&) const = default;
};

template <typename Ar>
void persist(Ar& ar, Outer& s) {
    ar(s.u8, s.u32, s.i64, s.flag, s.other, s.mode, s.wide, s.raw, s.regs);
    ar.vec(s.bytes, 64);
    ar.vec(s.words, 8);
    ar.str(s.name, 32);
    ar.opt(s.maybe);
    ar.opt(s.none);
    ar(s.inner);
    ar.vec(s.inners, 4);
    ar(s.pair);
}

Outer sample() {
    Outer o;
    o.u8 = 0xab;
    o.u32 = 0x01020304;
    o.i64 = -5;
    o.flag = true;
    o.mode = Mode::kAuto;
    o.wide = Wide::kB;
    o.raw = {1, 2, 3, 4, 5};
    o.regs = {0xffffffff, 0, 42};
    o.bytes = {9, 8, 7};
    o.words = {1, 0x8000000000000000ULL};
    o.name = "serial0";
    o.maybe = 77;
    o.inner = {3, "in"};
    o.inners = {{1, "a"}, {2, ""}};
    o.pair = {Inner{5, "x"}, Inner{6, "yz"}};
    return o;
}

TEST(StateArchive, RoundTripsEveryKindOfField) {
    const Outer in = sample();
    const auto bytes = save_to_bytes(in);
    auto out = load_from_bytes<Outer>(bytes);
    ASSERT_TRUE(out.ok()) << out.error().message();
    EXPECT_EQ(*out, in);
    EXPECT_FALSE(out->none.has_value());
}

TEST(StateArchive, EncodingIsLittleEndianAtEachWidth) {
    struct Ints {
        std::uint16_t a = 0x1122;
        std::uint32_t b = 0x33445566;
        bool c = true;
    };
    StateWriter w;
    Ints v;
    w(v.a, v.b, v.c);
    const std::vector<std::uint8_t> expected = {0x22, 0x11, 0x66, 0x55, 0x44, 0x33, 0x01};
    EXPECT_EQ(w.bytes(), expected);
}

TEST(StateArchive, RejectsTruncationAtEveryOffset) {
    const auto bytes = save_to_bytes(sample());
    for (std::size_t len = 0; len < bytes.size(); ++len) {
        auto r = load_from_bytes<Outer>(std::span(bytes).first(len));
        ASSERT_FALSE(r.ok()) << "accepted " << len << " of " << bytes.size() << " bytes";
        EXPECT_NE(r.error().message().find("truncated"), std::string::npos)
            << len << ": " << r.error().message();
    }
}

TEST(StateArchive, RejectsTrailingBytes) {
    auto bytes = save_to_bytes(sample());
    bytes.push_back(0);
    auto r = load_from_bytes<Outer>(bytes);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message().find("1 unexpected trailing bytes"), std::string::npos)
        << r.error().message();
}

TEST(StateArchive, RejectsACountOverItsCap) {
    // Inner's label is capped at 16: a count of 17 is refused before anything is allocated.
    Inner big{1, std::string(17, 'x')};
    auto r = load_from_bytes<Inner>(save_to_bytes(big));
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message().find("a count of 17 exceeds the limit of 16"), std::string::npos)
        << r.error().message();
    // At the cap is fine.
    Inner at_cap{1, std::string(16, 'x')};
    EXPECT_TRUE(load_from_bytes<Inner>(save_to_bytes(at_cap)).ok());
    // A huge count with no bytes behind it: the cap speaks first.
    std::vector<std::uint8_t> huge = {0x01, 0x00, 0xff, 0xff, 0xff, 0xff};
    r = load_from_bytes<Inner>(huge);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message().find("exceeds the limit"), std::string::npos);
}

TEST(StateArchive, RejectsABooleanOtherThanZeroOrOne) {
    struct Flag {
        bool b = false;
    };
    for (std::uint8_t v : {std::uint8_t{2}, std::uint8_t{0xff}}) {
        std::vector<std::uint8_t> bytes = {v};
        StateReader r(bytes);
        Flag f;
        r(f.b);
        auto done = r.finish();
        ASSERT_FALSE(done.ok());
        EXPECT_NE(done.error().message().find("a boolean holds " + std::to_string(v)),
                  std::string::npos)
            << done.error().message();
    }
}

TEST(StateArchive, AnOptionalsPresenceByteIsABoolean) {
    std::optional<std::uint32_t> o;
    std::vector<std::uint8_t> bytes = {2, 0, 0, 0, 0};
    StateReader r(bytes);
    r.opt(o);
    EXPECT_FALSE(r.finish().ok());
    EXPECT_FALSE(o.has_value());
}

TEST(StateArchive, TheFirstProblemIsTheOneReported) {
    // A bad boolean, then truncation: the message names the boolean.
    std::vector<std::uint8_t> bytes = {3};
    StateReader r(bytes);
    bool b = false;
    std::uint64_t after = 1;
    r(b, after);
    auto done = r.finish();
    ASSERT_FALSE(done.ok());
    EXPECT_NE(done.error().message().find("boolean"), std::string::npos);
    EXPECT_EQ(after, 0U);  // reads after a failure yield zeros
}

}  // namespace
}  // namespace vireo
