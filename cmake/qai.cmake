# qai_test(NAME SOURCES... LIBS ...): a GoogleTest binary registered with ctest.
# Tests that start PostgreSQL or services get the label "db" or "e2e" through LABELS.
function(qai_test name)
  cmake_parse_arguments(T "" "TIMEOUT" "SOURCES;LIBS;LABELS" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE ${T_LIBS} GTest::gtest GTest::gtest_main qai_warnings)
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  set(env "QAI_BUILD_DIR=${CMAKE_BINARY_DIR}" "QAI_SOURCE_DIR=${CMAKE_SOURCE_DIR}" ${qai_sanitizer_env})
  gtest_discover_tests(${name}
    DISCOVERY_MODE PRE_TEST
    PROPERTIES TIMEOUT ${T_TIMEOUT} LABELS "${T_LABELS}"
               ENVIRONMENT "${env}")
endfunction()
