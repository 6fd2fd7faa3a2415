# Project-wide build helpers: one warnings target and one way to add a test.

add_library(edgellm_warnings INTERFACE)
add_library(edgellm::warnings ALIAS edgellm_warnings)
target_compile_options(edgellm_warnings INTERFACE
  -Wall -Wextra -Wpedantic -Wno-unused-parameter
  $<$<CXX_COMPILER_ID:GNU>:-Wno-maybe-uninitialized>)

# edgellm_add_test(NAME SOURCES... [LIBS ...] [LABELS ...])
# Builds one GoogleTest executable and registers each of its tests with CTest.
function(edgellm_add_test name)
  cmake_parse_arguments(ARG "" "" "SOURCES;LIBS;LABELS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR})
  target_link_libraries(${name} PRIVATE ${ARG_LIBS} GTest::gtest GTest::gmock GTest::gtest_main
                        edgellm::warnings)
  target_compile_definitions(${name} PRIVATE
    EDGELLM_SHARED_DIR="${EDGELLM_SHARED_DIR}"
    EDGELLM_BINARY_DIR="${PROJECT_BINARY_DIR}"
    EDGELLM_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
  gtest_discover_tests(${name} DISCOVERY_TIMEOUT 120 PROPERTIES LABELS "${ARG_LABELS}")
endfunction()
