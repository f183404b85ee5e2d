#include "plot.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <sstream>

extern char** environ;

namespace mk::bench {

bool on_path(const std::string& program) {
  const char* path = std::getenv("PATH");
  if (path == nullptr) return false;
  std::istringstream dirs(path);
  for (std::string dir; std::getline(dirs, dir, ':');) {
    if (dir.empty()) dir = ".";
    if (access((dir + "/" + program).c_str(), X_OK) == 0) return true;
  }
  return false;
}

mk::Result<void> run_gnuplot(const std::string& script, const std::string& log) {
  const std::filesystem::path where = std::filesystem::path(script).parent_path();
  const std::string name = std::filesystem::path(script).filename().string();
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  // gnuplot writes the PNG the script names relative to the script, so it runs beside it.
  posix_spawn_file_actions_addchdir_np(&actions, where.empty() ? "." : where.c_str());
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  std::string program = "gnuplot";
  char* argv[] = {program.data(), const_cast<char*>(name.c_str()), nullptr};
  pid_t pid = 0;
  const int spawned = posix_spawnp(&pid, "gnuplot", &actions, nullptr, argv, environ);
  posix_spawn_file_actions_destroy(&actions);
  if (spawned == ENOENT) return mk::error(Errc::unavailable, "gnuplot not found");
  if (spawned != 0) {
    return mk::error(Errc::io_error,
                     fmt::format("cannot run gnuplot on {}: {}", script, std::strerror(spawned)));
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) {
      return mk::error(Errc::io_error,
                       fmt::format("waiting for gnuplot on {}: {}", script, std::strerror(errno)));
    }
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return mk::error(Errc::io_error,
                     fmt::format("gnuplot failed on {} (its output: {})", script, log));
  }
  return {};
}

}  // namespace mk::bench
