# Strict warnings for vireo's own targets (DESIGN.md §6: the NOVA set where practical).
add_library(vireo_warnings INTERFACE)
target_compile_options(vireo_warnings INTERFACE
  -Wall -Wextra -Werror -Wshadow -Wnon-virtual-dtor -Wold-style-cast -Wcast-align
  -Wsuggest-override -Wimplicit-fallthrough -Wformat=2 -Wmisleading-indentation)
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
  target_compile_options(vireo_warnings INTERFACE -Wduplicated-cond -Wlogical-op)
endif()

# vireo_library(NAME SOURCES... [DEPS ...]): one CMake target per layer (DESIGN.md §1).
function(vireo_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_library(${name} STATIC ${ARG_SOURCES})
  target_include_directories(${name} PUBLIC ${PROJECT_SOURCE_DIR}/src)
  target_link_libraries(${name} PUBLIC ${ARG_DEPS} PRIVATE vireo_warnings)
endfunction()
