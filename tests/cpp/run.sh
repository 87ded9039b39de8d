#!/usr/bin/env bash
# GoogleTest suite of csrc/core: plain build, ASan+UBSan build, and the
# plain binary again under valgrind's leak checker.
set -euo pipefail
cd "$(dirname "$0")/../.."
for variant in plain asan; do
  dir=build/cpp-tests-$variant
  sanitize=$([ $variant = asan ] && echo ON || echo OFF)
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCXXLOOP_BUILD_EXTENSION=OFF \
    -DCXXLOOP_BUILD_TESTS=ON -DCXXLOOP_SANITIZE=$sanitize -DCXXLOOP_WERROR="${CXXLOOP_WERROR:-OFF}" > /dev/null
  cmake --build "$dir" -j2 > /dev/null
  echo "=== csrc/core unit tests ($variant)"
  "$dir/core_tests" --gtest_brief=1
done
# valgrind does not know epoll_pwait2 and answers ENOSYS, so this run also
# covers the poller's millisecond epoll_wait fallback.
echo "=== csrc/core unit tests (valgrind)"
valgrind --quiet --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite \
  build/cpp-tests-plain/core_tests --gtest_brief=1
