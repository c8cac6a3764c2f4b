# Build hardening for every target (issue 11 §2), as Debian's dpkg-buildflags "hardening=+all"
# and Firecracker's release builds do:
#   -fstack-protector-strong      canaries in functions with arrays or address-taken locals
#   -fstack-clash-protection      probes every page of a large stack allocation, so a guest-sized
#                                 alloca or VLA cannot jump over the guard page
#   -fcf-protection               CET: endbr64 landing pads and shadow-stack compatible code
#   -D_GLIBCXX_ASSERTIONS         bounds checks in std::vector/array/string operator[]
#   -D_FORTIFY_SOURCE=2           checked memcpy/read/... where the size is known; needs -O1 or
#                                 more, so not in the Debug (ASan) build
#   PIE, -z relro -z now          full RELRO: the GOT is read-only after start-up
include(CheckPIESupported)
check_pie_supported()
set(CMAKE_POSITION_INDEPENDENT_CODE ON)

add_compile_options(-fstack-protector-strong -fstack-clash-protection -fcf-protection=full
                    -D_GLIBCXX_ASSERTIONS)
if(NOT CMAKE_BUILD_TYPE STREQUAL "Debug" AND NOT VIREO_FUZZ)
  add_compile_options(-U_FORTIFY_SOURCE -D_FORTIFY_SOURCE=2)
endif()
add_link_options(-Wl,-z,relro -Wl,-z,now -Wl,-z,noexecstack)
