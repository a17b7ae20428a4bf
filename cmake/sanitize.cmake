# QAI_SANITIZE: a tree built with Debian's clang under AddressSanitizer and
# UndefinedBehaviorSanitizer, where the unit and store tests run and the fuzz targets
# (tests/fuzz/) are built. Any report fails the test that caused it: UBSan does not recover, ASan
# stops at its first error and LeakSanitizer runs at exit.
#
#   cmake -S . -B build-sanitize -G Ninja -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DQAI_SANITIZE=ON
#
# The code is instrumented for libFuzzer's coverage too (-fsanitize=fuzzer-no-link), so one tree
# serves both; only the fuzz targets link libFuzzer's main. -O1 with line tables keeps reports
# readable and the cold build short.
#
# Our own code (qai_warnings, which has -Werror) is also checked by clang's thread-safety analysis:
# a member ABSL_GUARDED_BY a mutex that is read or written without it fails the build. gcc has no
# such analysis, so this tree is where it runs.
option(QAI_SANITIZE "Build with ASan + UBSan (clang) and the fuzz targets" OFF)

if(QAI_SANITIZE)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "QAI_SANITIZE needs clang (-DCMAKE_CXX_COMPILER=clang++), not ${CMAKE_CXX_COMPILER_ID}")
  endif()
  # Without UBSan's vptr check: it needs the typeinfo of every polymorphic class a dynamic type
  # is checked against, and Debian's SOCI does not export its backends' (the link fails).
  set(qai_sanitizers -fsanitize=address,undefined -fno-sanitize=vptr -fno-sanitize-recover=all
                     -fno-omit-frame-pointer)
  add_compile_options(${qai_sanitizers} -fsanitize=fuzzer-no-link)
  add_link_options(${qai_sanitizers})
  target_compile_options(qai_warnings INTERFACE -Wthread-safety)
  # What the tests run with (qai_test): a report ends the process with a stack trace.
  set(qai_sanitizer_env
      "ASAN_OPTIONS=detect_stack_use_after_return=1:check_initialization_order=1:strict_string_checks=1"
      "UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1")
  foreach(lang C CXX)
    set(CMAKE_${lang}_FLAGS_RELWITHDEBINFO "-O1 -gline-tables-only")
  endforeach()
endif()
