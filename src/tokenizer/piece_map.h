// PieceMap: string -> token id hash map that can be queried with a std::string_view.
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace mcpm {

struct PieceHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

using PieceMap = std::unordered_map<std::string, int32_t, PieceHash, std::equal_to<>>;

inline std::optional<int32_t> find_piece(const PieceMap& m, std::string_view s) {
  const auto it = m.find(s);
  if (it == m.end()) return std::nullopt;
  return it->second;
}

}  // namespace mcpm
