// The image lock's hand-over in a live migration (BlockFile::release_lock, retake_lock and
// BlockFileOptions::defer_lock): the destination opens the image while the source still holds
// it, and takes the lock only once the source has let go.
#include <gtest/gtest.h>

#include <string>

#include "backends/block/block_file.h"
#include "base/test_files.h"

namespace vireo {
namespace {

TEST(BlockFileLock, DeferredLockIsTakenOnlyOnceTheHolderLetsGo) {
    test::TempDir dir;
    const std::string img = dir.file("disk.img");
    test::write_text(img, std::string(4096, '\0'));
    auto source = BlockFile::open(img, {});
    ASSERT_TRUE(source) << source.error().message();
    // A plain second open is refused; a deferred one is not, and holds nothing yet.
    EXPECT_FALSE(BlockFile::open(img, {}));
    auto destination = BlockFile::open(img, {.defer_lock = true});
    ASSERT_TRUE(destination) << destination.error().message();
    auto taken = (*destination)->retake_lock();
    ASSERT_FALSE(taken);
    EXPECT_NE(taken.error().message().find("locked by another process"), std::string::npos)
        << taken.error().message();
    // The source lets go (its VM paused, I/O drained): the destination takes it, and from then
    // on the source cannot take it back.
    ASSERT_TRUE((*source)->release_lock());
    ASSERT_TRUE((*destination)->retake_lock());
    EXPECT_FALSE((*source)->retake_lock());
    EXPECT_FALSE(BlockFile::open(img, {}));
}

}  // namespace
}  // namespace vireo
