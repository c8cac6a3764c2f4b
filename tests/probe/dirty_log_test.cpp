// Dirty-page logging: pages the guest writes show up in the slot's bitmap, and reading the
// bitmap resets it (the basis of live migration's pre-copy rounds).
#include "probe_fixture.h"

namespace vireo::probe {
namespace {

bool is_dirty(const std::vector<std::uint64_t>& bitmap, std::uint64_t gpa) {
    const std::uint64_t page = gpa / 4096;
    return ((bitmap[page / 64] >> (page % 64)) & 1) != 0;
}

TEST_F(ProbeTest, GuestWritesAreLoggedAndTheLogResets) {
    constexpr std::uint64_t kPageA = 0x100000;
    constexpr std::uint64_t kPageB = 0x1ff000;
    constexpr std::uint64_t kUntouched = 0x180000;
    Asm a;
    a.mov_rax(kPageA).mov_mem_rax_imm32(0x11111111);
    a.mov_rax(kPageB + 0x10).mov_mem_rax_imm32(0x22222222).hlt();
    auto g = guest(CpuMode::Long64, a);
    ASSERT_TRUE(g);
    const std::uint64_t pages = g->memory().total_size() / 4096;
    std::vector<std::uint64_t> bitmap((pages + 63) / 64);
    // Start clean: setup wrote code and page tables before logging could see it.
    ASSERT_TRUE(g->vm().get_dirty_log(0, bitmap).ok());

    RecordingIo io;
    ASSERT_EQ(run(*g, io).kind, VcpuExitKind::Halt);
    EXPECT_EQ(*g->memory().read_obj<std::uint32_t>(GuestAddress(kPageB + 0x10)), 0x22222222U);

    std::fill(bitmap.begin(), bitmap.end(), 0);
    ASSERT_TRUE(g->vm().get_dirty_log(0, bitmap).ok());
    EXPECT_TRUE(is_dirty(bitmap, kPageA));
    EXPECT_TRUE(is_dirty(bitmap, kPageB));
    EXPECT_FALSE(is_dirty(bitmap, kUntouched));

    std::fill(bitmap.begin(), bitmap.end(), 0);
    ASSERT_TRUE(g->vm().get_dirty_log(0, bitmap).ok());
    EXPECT_FALSE(is_dirty(bitmap, kPageA)) << "reading the log did not reset it";
}

TEST_F(ProbeTest, DirtyLogRejectsShortBitmapAndUnknownSlot) {
    Asm a;
    a.hlt();
    auto g = guest(CpuMode::Long64, a);
    ASSERT_TRUE(g);
    std::vector<std::uint64_t> tiny(1);  // 2 MiB = 512 pages needs 8 words
    EXPECT_FALSE(g->vm().get_dirty_log(0, tiny).ok());
    std::vector<std::uint64_t> enough(8);
    EXPECT_FALSE(g->vm().get_dirty_log(7, enough).ok());
}

}  // namespace
}  // namespace vireo::probe
