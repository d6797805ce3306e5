#!/bin/sh
# README example check, shared by CMake (add_test) and Meson (test()).
#
#   sh tests/check_readme.sh README INCLUDE_DIR WORK_DIR CXX [CXX_ARGS...]
#
# Extracts the FIRST fenced code block whose opening line is exactly ```cpp
# from README, then compiles, links and runs it:
#   CXX [CXX_ARGS...] -std=c++20 -I INCLUDE_DIR -pthread WORK_DIR/readme_example.cpp -o WORK_DIR/readme_example
#   WORK_DIR/readme_example
# Fails if there is no such block, the block is unterminated, or any step fails.
set -u

if [ "$#" -lt 4 ]; then
  echo "usage: $0 README INCLUDE_DIR WORK_DIR CXX [CXX_ARGS...]" >&2
  exit 2
fi
readme=$1
inc=$2
work=$3
shift 3

if [ ! -r "$readme" ]; then
  echo "FAIL: $readme not found (its first \`\`\`cpp block is compiled as a test)" >&2
  exit 1
fi
mkdir -p "$work" || exit 1
src="$work/readme_example.cpp"
exe="$work/readme_example"
rm -f "$src" "$exe"

# Trailing whitespace / CR after the fence is tolerated.
awk '
  state == 0 && /^```cpp[ \t\r]*$/ { state = 1; start = NR; next }
  state == 1 && /^```[ \t\r]*$/    { state = 2; exit }
  state == 1                       { sub(/\r$/, ""); print }
  END {
    if (state == 0) { print "readme: no code block opening with a line ```cpp" > "/dev/stderr"; exit 3 }
    if (state == 1) { print "readme: ```cpp block opened at line " start " is never closed" > "/dev/stderr"; exit 4 }
  }
' "$readme" > "$src"
st=$?
if [ "$st" -ne 0 ]; then
  echo "FAIL: could not extract the first \`\`\`cpp block from $readme" >&2
  exit 1
fi

echo "readme: extracted $(wc -l < "$src") lines from $readme into $src"
echo "readme: $* -std=c++20 -I$inc -pthread $src -o $exe"
if ! "$@" -std=c++20 -I"$inc" -pthread "$src" -o "$exe"; then
  echo "FAIL: README example does not compile/link (source: $src)" >&2
  exit 1
fi
echo "readme: running $exe"
"$exe"
st=$?
if [ "$st" -ne 0 ]; then
  echo "FAIL: README example exited with status $st" >&2
  exit 1
fi
echo "PASS: README example compiles, links and runs"
