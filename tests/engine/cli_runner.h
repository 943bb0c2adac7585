// Runs the built `tessera` binary with arguments and captures its exit code,
// stdout and stderr separately: for tests of the command-line tool.
#ifndef TESSERA_TESTS_ENGINE_CLI_RUNNER_H_
#define TESSERA_TESTS_ENGINE_CLI_RUNNER_H_

#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace tessera::testing {

struct CliResult {
  int exit_code = -1;
  std::string out, err;
};

inline std::string ShellQuote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

inline std::string ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// `binary` is the tool's path (tests get it as TESSERA_BINARY).
inline CliResult RunCli(const std::string& binary, const std::vector<std::string>& args) {
  std::string cmd = binary;
  for (const std::string& a : args) cmd += " " + ShellQuote(a);
  const std::string out = ::testing::TempDir() + "/tessera_cli_out.txt";
  const std::string err = ::testing::TempDir() + "/tessera_cli_err.txt";
  cmd += " >" + out + " 2>" + err;
  CliResult r;
  const int status = std::system(cmd.c_str());
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = ReadWholeFile(out);
  r.err = ReadWholeFile(err);
  return r;
}

}  // namespace tessera::testing

#endif  // TESSERA_TESTS_ENGINE_CLI_RUNNER_H_
