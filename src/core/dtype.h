// Element types and their traits (one constexpr table), plus exact bf16/f16 <-> f32 conversion.
#pragma once
#include <bit>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string_view>

namespace mcpm {

enum class DType : uint8_t { F32, F16, BF16, F64, I64, I32, I16, I8, U8, BOOL, COUNT };

struct DTypeTraits {
  std::string_view name;         // our name, e.g. "bf16"
  std::string_view safetensors;  // safetensors header name, e.g. "BF16"
  size_t bytes;                  // bytes per element
  bool is_float;
};

inline constexpr DTypeTraits kDTypeTraits[] = {
    {"f32", "F32", 4, true},  {"f16", "F16", 2, true}, {"bf16", "BF16", 2, true},
    {"f64", "F64", 8, true},  {"i64", "I64", 8, false}, {"i32", "I32", 4, false},
    {"i16", "I16", 2, false}, {"i8", "I8", 1, false},   {"u8", "U8", 1, false},
    {"bool", "BOOL", 1, false},
};
static_assert(std::size(kDTypeTraits) == size_t(DType::COUNT));

constexpr const DTypeTraits& traits(DType t) { return kDTypeTraits[size_t(t)]; }
constexpr size_t dtype_size(DType t) { return traits(t).bytes; }
constexpr std::string_view dtype_name(DType t) { return traits(t).name; }

inline std::optional<DType> dtype_from_safetensors(std::string_view s) {
  for (size_t i = 0; i < size_t(DType::COUNT); ++i)
    if (kDTypeTraits[i].safetensors == s) return DType(i);
  return std::nullopt;
}

// ---- bf16 / f16 -------------------------------------------------------------
using bf16_t = uint16_t;  // raw bits
using f16_t = uint16_t;   // raw bits

inline float bf16_to_f32(bf16_t h) { return std::bit_cast<float>(uint32_t(h) << 16); }

// Round to nearest even; NaN stays NaN (quiet).
inline bf16_t f32_to_bf16(float f) {
  uint32_t u = std::bit_cast<uint32_t>(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return bf16_t((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return bf16_t(u >> 16);
}

inline float round_to_bf16(float f) { return bf16_to_f32(f32_to_bf16(f)); }

inline float f16_to_f32(f16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: normalise
      int e = -1;
      do { ++e; mant <<= 1; } while ((mant & 0x400u) == 0);
      bits = sign | uint32_t(127 - 15 - e) << 23 | (mant & 0x3ffu) << 13;
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | mant << 13;
  } else {
    bits = sign | (exp + 127 - 15) << 23 | mant << 13;
  }
  return std::bit_cast<float>(bits);
}

inline f16_t f32_to_f16(float f) {  // round to nearest even
  uint32_t u = std::bit_cast<uint32_t>(f);
  const uint32_t sign = (u >> 16) & 0x8000u;
  u &= 0x7fffffffu;
  if (u > 0x7f800000u) return f16_t(sign | 0x7e00u);
  if (u >= 0x477ff000u) return f16_t(sign | 0x7c00u);  // overflow -> inf
  if (u < 0x38800000u) {                                // subnormal or zero
    if (u < 0x33000000u) return f16_t(sign);
    const uint32_t e = u >> 23, m = (u & 0x7fffffu) | 0x800000u;
    const uint32_t shift = 126 - e;  // 14..24
    uint32_t r = m >> shift;
    const uint32_t rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (r & 1u))) ++r;
    return f16_t(sign | r);
  }
  u += 0xfffu + ((u >> 13) & 1u);
  return f16_t(sign | ((u - 0x38000000u) >> 13));
}

}  // namespace mcpm
