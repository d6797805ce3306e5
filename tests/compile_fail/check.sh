#!/bin/sh
# Compile-fail test runner, shared by CMake (add_test) and Meson (test()).
#
#   sh tests/compile_fail/check.sh SOURCE INCLUDE_DIR CXX [CXX_ARGS...]
#
# Runs:  CXX [CXX_ARGS...] -std=c++20 -fsyntax-only -I INCLUDE_DIR SOURCE
# and PASSES iff
#   * SOURCE has at least one line  `// EXPECT: <regex>`,
#   * the compilation FAILS (non-zero exit), and
#   * every EXPECT regex (POSIX extended regex, grep -E) matches the compiler
#     output (stdout+stderr).
# The compiler runs with LC_ALL=C, so GCC quotes names with plain ASCII
# 'quotes' (not UTF-8 curly ones) -- write regexes accordingly, and prefer
# matching your static_assert message text, which is the same on GCC & Clang.
set -u

if [ "$#" -lt 3 ]; then
  echo "usage: $0 SOURCE INCLUDE_DIR CXX [CXX_ARGS...]" >&2
  exit 2
fi
src=$1
inc=$2
shift 2

if [ ! -r "$src" ]; then
  echo "compile_fail: cannot read $src" >&2
  exit 1
fi

LC_ALL=C
export LC_ALL

# All `// EXPECT: regex` lines; surrounding whitespace and a trailing CR are stripped.
expects=$(sed -n 's#^[[:space:]]*//[[:space:]]*EXPECT:[[:space:]]*##p' "$src" \
  | sed 's/[[:space:]]*$//')
if [ -z "$expects" ]; then
  echo "FAIL: $src has no '// EXPECT: <regex>' line (every compile-fail test needs one)" >&2
  exit 1
fi

echo "compile_fail: $* -std=c++20 -fsyntax-only -fdiagnostics-color=never -I$inc $src"
output=$("$@" -std=c++20 -fsyntax-only -fdiagnostics-color=never -I"$inc" "$src" 2>&1)
status=$?

if [ "$status" -eq 0 ]; then
  echo "$output"
  echo "FAIL: $src compiled successfully, but it must fail to compile" >&2
  exit 1
fi

rc=0
# Iterate over EXPECT lines (newline-separated) without a subshell.
set -f  # no pathname expansion of the regexes
old_ifs=$IFS
IFS='
'
for re in $expects; do
  if printf '%s\n' "$output" | grep -E -q -e "$re"; then
    echo "ok: compiler output matches EXPECT: $re"
  else
    echo "FAIL: compiler output does not match EXPECT: $re" >&2
    rc=1
  fi
done
IFS=$old_ifs
set +f

if [ "$rc" -ne 0 ]; then
  echo "----- compiler output (exit $status) -----"
  printf '%s\n' "$output"
  echo "-----------------------------------------"
else
  echo "PASS: $src fails to compile as expected"
fi
exit "$rc"
