#include "quant/dense_quant.h"

#include <cmath>
#include <vector>

#include "core/error.h"
#include "kernels/ref/quant_ref.h"

namespace mcpm {

namespace {

float elem(const TensorInfo& t, int64_t i) {
  switch (t.dtype) {
    case DType::BF16: return bf16_to_f32(reinterpret_cast<const bf16_t*>(t.data)[i]);
    case DType::F16: return f16_to_f32(reinterpret_cast<const f16_t*>(t.data)[i]);
    case DType::F32: return reinterpret_cast<const float*>(t.data)[i];
    default: MCPM_ASSERT(false && "dense tensor expected");
  }
  return 0.0f;
}

// Whether values [i0, i0 + n) are {-a, 0, +a} for one a; writes a (0 for an all-zero range).
bool ternary_range(const TensorInfo& t, int64_t i0, int64_t n, float& a) {
  a = 0.0f;
  for (int64_t i = i0; i < i0 + n; ++i) {
    const float v = std::fabs(elem(t, i));
    if (v == 0.0f) continue;
    if (a == 0.0f) a = v;
    else if (v != a) return false;
  }
  return true;
}

bool ternary_with_group(const TensorInfo& t, int64_t rows, int64_t K, int64_t group) {
  float a;
  for (int64_t n = 0; n < rows; ++n)
    for (int64_t g = 0; g < K; g += group)
      if (!ternary_range(t, n * K + g, group, a)) return false;
  return true;
}

}  // namespace

QuantLayout rtn_layout(WType type, int64_t group, int64_t K, const std::string& what) {
  QuantLayout l;
  l.type = type;
  l.group = group <= 0 ? K : group;
  MCPM_CHECK(K % kQBlock == 0 && l.group % kQBlock == 0 && K % l.group == 0,
             "{}: cannot quantize to {} with group {}: K = {} must be a multiple of 32 and of the group size (a multiple "
             "of 32)", what, weight_type_info(type).name, l.group, K);
  return l;
}

void rtn_fill(const TensorInfo& t, int64_t N, int64_t K, const QuantLayout& l, const QuantDst& d) {
  const WeightTypeInfo& info = weight_type_info(l.type);
  std::vector<float> row(static_cast<size_t>(K));
  const int64_t ng = K / l.group;
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t k = 0; k < K; ++k) row[size_t(k)] = elem(t, n * K + k);
    ref::quantize_row_rtn(row.data(), K, l.type, l.group, l.mins, d.codes + size_t(n) * info.row_bytes(K),
                          d.scales + n * ng, l.mins ? d.mins + n * ng : nullptr);
  }
}

std::optional<int64_t> detect_ternary_group(const TensorInfo& t, int64_t N, int64_t K) {
  if (K % kQBlock != 0 || N < 1 || !(t.dtype == DType::BF16 || t.dtype == DType::F16 || t.dtype == DType::F32))
    return std::nullopt;
  for (int64_t group : {K, int64_t(128), int64_t(64), int64_t(32)}) {
    if (group > K || K % group != 0) continue;
    if (!ternary_with_group(t, std::min<int64_t>(N, 4), K, group)) continue;  // cheap screen
    if (ternary_with_group(t, N, K, group)) return group;
  }
  return std::nullopt;
}

void ternary_fill(const TensorInfo& t, int64_t N, int64_t K, const QuantLayout& l, const QuantDst& d) {
  const WeightTypeInfo& info = weight_type_info(WType::T2);
  std::vector<uint8_t> codes(static_cast<size_t>(K));
  const int64_t ng = K / l.group;
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t g = 0; g < ng; ++g) {
      float a;
      const bool ok = ternary_range(t, n * K + g * l.group, l.group, a);
      MCPM_ASSERT(ok);
      d.scales[n * ng + g] = a;
      for (int64_t k = g * l.group; k < (g + 1) * l.group; ++k) {
        const float v = elem(t, n * K + k);
        codes[size_t(k)] = uint8_t(v > 0 ? 2 : v < 0 ? 0 : 1);
      }
    }
    info.pack_codes(codes.data(), K, d.codes + size_t(n) * info.row_bytes(K));
  }
}

}  // namespace mcpm
