// JSON files with errors that name the file and the field (nlohmann::json underneath).
#pragma once
#include <cmath>
#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/error.h"

namespace mcpm {

using json = nlohmann::json;

// Parses `path`; throws mcpm::Error "<path>: malformed JSON (...)" on syntax errors.
json parse_json_file(const std::string& path);
json parse_json_text(const std::string& text, const std::string& what);

namespace detail {
template <class T> constexpr const char* json_kind() {
  if constexpr (std::is_same_v<T, bool>) return "a boolean";
  else if constexpr (std::is_integral_v<T>) return "an integer";
  else if constexpr (std::is_floating_point_v<T>) return "a number";
  else if constexpr (std::is_same_v<T, std::string>) return "a string";
  else if constexpr (std::is_same_v<T, std::vector<float>> || std::is_same_v<T, std::vector<double>>)
    return "a list of numbers";
  else if constexpr (std::is_same_v<T, std::vector<int64_t>> || std::is_same_v<T, std::vector<int>>)
    return "a list of integers";
  else return "a value of the right type";
}
template <class T> bool json_is(const json& v) {
  if constexpr (std::is_same_v<T, bool>) return v.is_boolean();
  else if constexpr (std::is_integral_v<T>) {
    // In T's range (found by fuzz_model_spec: 1.6e43 was converted to int64 first, undefined), and
    // a float only when it is a whole number.
    using L = std::numeric_limits<T>;
    if (v.is_number_unsigned()) return v.get<uint64_t>() <= uint64_t(L::max());
    if (v.is_number_integer()) {
      const int64_t i = v.get<int64_t>();
      if constexpr (L::is_signed) return i >= int64_t(L::min()) && i <= int64_t(L::max());
      else return i >= 0 && uint64_t(i) <= uint64_t(L::max());
    }
    if (!v.is_number_float()) return false;
    const double d = v.get<double>();
    return d >= double(L::min()) && d < std::ldexp(1.0, L::digits) && d == std::trunc(d);
  }
  else if constexpr (std::is_floating_point_v<T>) return v.is_number();
  else if constexpr (std::is_same_v<T, std::string>) return v.is_string();
  else if constexpr (std::is_same_v<T, std::vector<float>> || std::is_same_v<T, std::vector<double>>) {
    if (!v.is_array()) return false;
    for (const auto& e : v) if (!e.is_number()) return false;
    return true;
  } else if constexpr (std::is_same_v<T, std::vector<int64_t>> || std::is_same_v<T, std::vector<int>>) {
    if (!v.is_array()) return false;
    for (const auto& e : v) if (!e.is_number_integer()) return false;
    return true;
  } else return true;
}
}  // namespace detail

// A JSON object together with the name of the file (and path inside it) it came from.
class JsonObject {
 public:
  JsonObject(const json& j, std::string where) : j_(j), where_(std::move(where)) {
    MCPM_CHECK(j.is_object(), "{}: expected a JSON object", where_);
  }
  bool has(const char* key) const { return j_.contains(key) && !j_.at(key).is_null(); }
  const json& raw() const { return j_; }
  const std::string& where() const { return where_; }

  template <class T> T required(const char* key) const {
    MCPM_CHECK(has(key), "{}: required field '{}' is missing (expected {})", where_, key, detail::json_kind<T>());
    return get<T>(key);
  }
  template <class T> T optional(const char* key, T fallback) const { return has(key) ? get<T>(key) : fallback; }
  JsonObject object(const char* key) const {
    MCPM_CHECK(has(key) && j_.at(key).is_object(), "{}: field '{}' must be a JSON object", where_, key);
    return JsonObject(j_.at(key), where_ + "." + key);
  }

 private:
  template <class T> T get(const char* key) const {
    const json& v = j_.at(key);
    MCPM_CHECK(detail::json_is<T>(v), "{}: field '{}' must be {}, got {}", where_, key, detail::json_kind<T>(),
               v.dump().substr(0, 80));
    if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
      if (v.is_number_float()) return T(v.get<double>());
    }
    return v.get<T>();
  }
  const json& j_;
  std::string where_;
};

}  // namespace mcpm
