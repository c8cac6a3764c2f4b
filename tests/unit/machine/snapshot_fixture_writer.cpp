// Writes the snapshot fixture of the current format (snapshot_fixture.h) to the path given:
// run once after a format change, and commit the new file beside the old ones.
#include <cstdio>

#include "machine/snapshot_fixture.h"

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s OUT.vsnap\n", argv[0]);
        return 2;
    }
    auto r = vireo::write_snapshot_file(argv[1], vireo::fixture::fixture_contents());
    if (!r) {
        std::fprintf(stderr, "%s\n", r.error().message().c_str());
        return 1;
    }
    return 0;
}
