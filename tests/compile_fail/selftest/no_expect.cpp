// Harness self-test: fails to compile but has no expectation line, so
// check.sh must report failure.
static_assert(sizeof(char) == 2, "selftest: no expectation line");
