// Sample compile-fail test: exercises the compile_fail harness itself and
// shows the format.  It deliberately does not include raft headers.
//
// Every file in tests/compile_fail/ must FAIL to compile, and each
// `// EXPECT: <regex>` line (POSIX ERE) must match the compiler's output.
// EXPECT: harness sample: T must be an integral type

#include <type_traits>

template <class T>
struct only_integral {
  static_assert(std::is_integral_v<T>, "harness sample: T must be an integral type");
};

int main() {
  only_integral<int> fine;
  only_integral<double> boom;  // instantiation fires the static_assert
  (void)fine;
  (void)boom;
}
