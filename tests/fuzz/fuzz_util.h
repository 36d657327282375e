// Helpers shared by the libFuzzer targets: a private temporary folder (on /dev/shm when present) in
// which each input is written as the file the parser under test reads, exactly as users hand it over.
#pragma once
#include <stdlib.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>

namespace mcpm::fuzz {

inline const std::string& temp_dir() {
  static const std::string dir = [] {
    const char* base = std::filesystem::is_directory("/dev/shm") ? "/dev/shm" : "/tmp";
    std::string t = std::string(base) + "/mcpm-fuzz-XXXXXX";
    if (!mkdtemp(t.data())) {
      std::perror("mkdtemp");
      std::abort();
    }
    static std::string to_remove = t;
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(to_remove, ec);
    });
    return t;
  }();
  return dir;
}

// Writes `size` bytes to <temp_dir>/<name> and returns the path.
inline std::string write_temp(const std::string& name, const void* data, size_t size) {
  const std::string path = temp_dir() + "/" + name;
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f || (size && std::fwrite(data, 1, size, f) != size) || std::fclose(f) != 0) {
    std::perror(path.c_str());
    std::abort();
  }
  return path;
}

inline std::string write_temp(const std::string& name, const std::string& s) {
  return write_temp(name, s.data(), s.size());
}

}  // namespace mcpm::fuzz
