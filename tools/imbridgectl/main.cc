// imbridgectl: the operator's command-line client of the router's Admin API.
// See `imbridgectl --help` and docs/operations.md.

#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "tools/imbridgectl/commands.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  return imbridge::ctl::Main(
      args, [](const char* name) { return std::getenv(name); }, std::cout,
      std::cerr);
}
