// Harness self-test: this file COMPILES, so check.sh must report failure.
// EXPECT: .*
int main() { return 0; }
