// Harness self-test: fails to compile, but for a different reason than
// expected, so check.sh must report failure.
// EXPECT: this text never appears in the compiler output
static_assert(sizeof(char) == 2, "selftest: wrong reason");
