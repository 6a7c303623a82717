# One small helper per target kind, so each directory's CMakeLists is a short list.

# Warnings and sanitizers shared by every Sluice target.
function(sluice_target_defaults target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow
    -Wnon-virtual-dtor -Wcast-align -Woverloaded-virtual)
  if(SLUICE_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
  if(SLUICE_SANITIZE STREQUAL "address")
    target_compile_options(${target} PRIVATE -fsanitize=address,undefined -fno-omit-frame-pointer
      -fno-sanitize-recover=undefined)
    target_link_options(${target} PRIVATE -fsanitize=address,undefined)
  elseif(SLUICE_SANITIZE STREQUAL "thread")
    # -Wno-tsan: third-party headers (moodycamel) use standalone fences, which GCC warns
    # TSan does not model; our own code has none.
    target_compile_options(${target} PRIVATE -fsanitize=thread -fno-omit-frame-pointer -Wno-tsan)
    target_link_options(${target} PRIVATE -fsanitize=thread)
  endif()
endfunction()

# sluice_library(NAME <module> SOURCES ... DEPS ...)
# Builds sluice_<module>, aliased and exported as sluice::<module>; public headers live in
# <module>/include and are installed.
function(sluice_library)
  cmake_parse_arguments(A "" "NAME" "SOURCES;DEPS;PRIVATE_DEPS" ${ARGN})
  set(t sluice_${A_NAME})
  add_library(${t} ${A_SOURCES})
  add_library(sluice::${A_NAME} ALIAS ${t})
  set_target_properties(${t} PROPERTIES EXPORT_NAME ${A_NAME} OUTPUT_NAME sluice_${A_NAME})
  target_include_directories(${t}
    PUBLIC $<BUILD_INTERFACE:${CMAKE_CURRENT_SOURCE_DIR}/include>
           $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>
    PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/src)
  target_link_libraries(${t} PUBLIC ${A_DEPS} PRIVATE ${A_PRIVATE_DEPS})
  # Exported with the targets: a consumer of the installed package gets C++20 too.
  target_compile_features(${t} PUBLIC cxx_std_20)
  sluice_target_defaults(${t})
  install(TARGETS ${t} EXPORT SluiceTargets
    ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
    LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
  install(DIRECTORY include/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
endfunction()

# sluice_test(NAME <name> SOURCES ... DEPS ... [LABELS ...])
# A GoogleTest executable registered with CTest; LABELS select suites (e.g. "concurrency"
# runs again under TSan in CI).
function(sluice_test)
  cmake_parse_arguments(A "" "NAME" "SOURCES;DEPS;LABELS" ${ARGN})
  add_executable(${A_NAME} ${A_SOURCES})
  target_link_libraries(${A_NAME} PRIVATE ${A_DEPS} GTest::gtest GTest::gtest_main)
  target_include_directories(${A_NAME} PRIVATE ${PROJECT_SOURCE_DIR}/tests)
  sluice_target_defaults(${A_NAME})
  include(GoogleTest)
  gtest_discover_tests(${A_NAME} PROPERTIES LABELS "${A_LABELS}" DISCOVERY_TIMEOUT 60)
endfunction()

# sluice_bench(NAME <name> SOURCES ... DEPS ...)
function(sluice_bench)
  cmake_parse_arguments(A "" "NAME" "SOURCES;DEPS" ${ARGN})
  add_executable(${A_NAME} ${A_SOURCES})
  target_link_libraries(${A_NAME} PRIVATE ${A_DEPS})
  sluice_target_defaults(${A_NAME})
endfunction()

# sluice_fuzz(NAME <name> SOURCES ... DEPS ...)
# A libFuzzer target; only in a clang build with SLUICE_BUILD_FUZZ=ON
# (CC=clang CXX=clang++ cmake -DSLUICE_BUILD_FUZZ=ON ...). Run: ./<name> -max_total_time=60
function(sluice_fuzz)
  cmake_parse_arguments(A "" "NAME" "SOURCES;DEPS" ${ARGN})
  add_executable(${A_NAME} ${A_SOURCES})
  target_link_libraries(${A_NAME} PRIVATE ${A_DEPS})
  target_compile_options(${A_NAME} PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_options(${A_NAME} PRIVATE -fsanitize=fuzzer,address,undefined)
  sluice_target_defaults(${A_NAME})
endfunction()
