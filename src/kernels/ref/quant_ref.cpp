#include "kernels/ref/quant_ref.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "kernels/ref/ref.h"

namespace mcpm::ref {

void pack_q8(const uint8_t* codes, int64_t K, uint8_t* packed) { std::memcpy(packed, codes, size_t(K)); }
void unpack_q8(const uint8_t* packed, int64_t K, uint8_t* codes) { std::memcpy(codes, packed, size_t(K)); }

void pack_q4(const uint8_t* codes, int64_t K, uint8_t* packed) {
  for (int64_t b = 0; b < K / 32; ++b)
    for (int j = 0; j < 16; ++j)
      packed[b * 16 + j] = uint8_t((codes[b * 32 + j] & 0xF) | (codes[b * 32 + j + 16] & 0xF) << 4);
}
void unpack_q4(const uint8_t* packed, int64_t K, uint8_t* codes) {
  for (int64_t b = 0; b < K / 32; ++b)
    for (int j = 0; j < 16; ++j) {
      codes[b * 32 + j] = packed[b * 16 + j] & 0xF;
      codes[b * 32 + j + 16] = packed[b * 16 + j] >> 4;
    }
}

void pack_t2(const uint8_t* codes, int64_t K, uint8_t* packed) {
  const int64_t chunks = (K + 127) / 128;
  std::memset(packed, 0, size_t(chunks * 32));
  for (int64_t k = 0; k < K; ++k) {
    const int64_t c = k / 128, r = k % 128;
    packed[c * 32 + r % 32] |= uint8_t((codes[k] & 3) << (2 * (r / 32)));
  }
}
void unpack_t2(const uint8_t* packed, int64_t K, uint8_t* codes) {
  for (int64_t k = 0; k < K; ++k) {
    const int64_t c = k / 128, r = k % 128;
    codes[k] = (packed[c * 32 + r % 32] >> (2 * (r / 32))) & 3;
  }
}

int code_at(const Matrix& W, int64_t n, int64_t k) {
  const WeightTypeInfo& info = weight_type_info(W);
  const uint8_t* row = static_cast<const uint8_t*>(W.data) + size_t(n) * info.row_bytes(W.cols);
  switch (W.type) {
    case WType::Q8: return int(int8_t(row[k]));
    case WType::Q4: return (row[(k / 32) * 16 + k % 16] >> (4 * ((k % 32) / 16))) & 0xF;
    case WType::T2: return (row[(k / 128) * 32 + k % 32] >> (2 * ((k % 128) / 32))) & 3;
    default: MCPM_ASSERT(false && "code_at: not a quantized type");
  }
  return 0;
}

void dequant_row(const Matrix& W, int64_t n, float* out) {
  const int64_t K = W.cols;
  if (W.type == WType::Dense) {
    for (int64_t k = 0; k < K; ++k) out[k] = load_f32(W.data, W.dtype, n * K + k);
    return;
  }
  const WeightTypeInfo& info = weight_type_info(W);
  const int64_t ng = K / W.group;
  const float* s = W.scales + n * ng;
  const float* m = W.mins ? W.mins + n * ng : nullptr;
  for (int64_t k = 0; k < K; ++k) {
    const int64_t g = k / W.group;
    const float c = float(code_at(W, n, k));
    const float w = m ? s[g] * c + m[g] : s[g] * (c - float(info.code_bias));
    out[W.perm ? W.perm[k] : k] = w;
  }
}

void quantize_act(const float* x, const Matrix& W, int8_t* q, float* d, float* gsum) {
  const int64_t K = W.cols, ab = act_block(W), bpg = W.group / kQBlock;
  auto xk = [&](int64_t k) { return x[W.perm ? W.perm[k] : k]; };
  for (int64_t k0 = 0; k0 < K; k0 += ab) {
    float amax = 0.0f;
    for (int64_t k = k0; k < k0 + ab; ++k) amax = std::max(amax, std::fabs(xk(k)));
    const float db = amax / 127.0f, inv = amax > 0.0f ? 127.0f / amax : 0.0f;
    for (int64_t b = k0 / kQBlock; b < (k0 + ab) / kQBlock; ++b) d[b] = db;
    for (int64_t k = k0; k < k0 + ab; ++k) q[k] = int8_t(std::lrintf(std::clamp(xk(k) * inv, -127.0f, 127.0f)));
  }
  for (int64_t g = 0; g < K / W.group; ++g) {
    float acc = 0.0f;
    for (int64_t b = g * bpg; b < (g + 1) * bpg; ++b) {
      int32_t sq = 0;
      for (int64_t j = 0; j < kQBlock; ++j) sq += q[b * kQBlock + j];
      acc += d[b] * float(sq);
    }
    gsum[g] = acc;
  }
}

float qdot(const Matrix& W, int64_t n, const QuantAct& a) {
  const WeightTypeInfo& info = weight_type_info(W);
  const int64_t K = W.cols, ng = K / W.group, bpg = W.group / kQBlock;
  const float* s = W.scales + n * ng;
  double acc = 0.0;
  for (int64_t b = 0; b < K / kQBlock; ++b) {
    int32_t isum = 0;
    for (int64_t j = 0; j < kQBlock; ++j) isum += code_at(W, n, b * kQBlock + j) * a.q[b * kQBlock + j];
    acc += double(s[b / bpg]) * double(a.d[b]) * double(isum);
  }
  for (int64_t g = 0; g < ng; ++g) {
    const double o = W.mins ? double(W.mins[n * ng + g]) : -double(info.code_bias) * double(s[g]);
    acc += o * double(a.gsum[g]);
  }
  return float(acc);
}

void qmatmul(const float* x, int64_t T, const Matrix& W, float* y, float alpha, float beta) {
  const int64_t K = W.cols, N = W.rows;
  std::vector<int8_t> q(static_cast<size_t>(K));
  std::vector<float> d(size_t(K / kQBlock)), gs(size_t(K / W.group));
  const QuantAct a{q.data(), d.data(), gs.data()};
  for (int64_t t = 0; t < T; ++t) {
    quantize_act(x + t * K, W, q.data(), d.data(), gs.data());
    for (int64_t n = 0; n < N; ++n) {
      float& o = y[t * N + n];
      o = alpha * qdot(W, n, a) + (beta != 0.0f ? beta * o : 0.0f);
    }
  }
}

void quantize_row_rtn(const float* w, int64_t K, WType type, int64_t group, bool asym, uint8_t* packed, float* scales,
                      float* mins) {
  const WeightTypeInfo& info = weight_type_info(type);
  std::vector<uint8_t> codes(static_cast<size_t>(K));
  const int maxq = (1 << info.bits) - 1;
  for (int64_t g0 = 0; g0 < K; g0 += group) {
    const int64_t gi = g0 / group;
    if (type == WType::T2) {  // absmean ternary: s = mean |w|, c = clamp(round(w / s), -1, 1) + 1
      double sum = 0.0;
      for (int64_t k = g0; k < g0 + group; ++k) sum += std::fabs(w[k]);
      const float s = std::max(float(sum / double(group)), 1e-8f);
      scales[gi] = s;
      if (asym) mins[gi] = -s;
      for (int64_t k = g0; k < g0 + group; ++k)
        codes[size_t(k)] = uint8_t(std::clamp<long>(std::lrintf(w[k] / s), -1, 1) + 1);
      continue;
    }
    // GPTQ quant.py find_params (perchannel): range includes 0; sym: symmetric around 0.
    float xmin = 0.0f, xmax = 0.0f;
    for (int64_t k = g0; k < g0 + group; ++k) xmin = std::min(xmin, w[k]), xmax = std::max(xmax, w[k]);
    if (!asym) {
      xmax = std::max(-xmin, xmax);
      if (xmin < 0) xmin = -xmax;
    }
    if (xmin == 0.0f && xmax == 0.0f) xmin = -1.0f, xmax = 1.0f;
    const float s = (xmax - xmin) / float(maxq);
    const float z = asym ? std::nearbyint(-xmin / s) : float((maxq + 1) / 2);
    scales[gi] = s;
    const int off = info.signed_codes ? 128 : 0;  // q8 stores q - 128 as int8
    if (asym) mins[gi] = s * (float(off) - z);
    for (int64_t k = g0; k < g0 + group; ++k) {
      const int q = int(std::clamp(std::nearbyint(w[k] / s) + z, 0.0f, float(maxq)));
      codes[size_t(k)] = uint8_t(q - off);
    }
  }
  info.pack_codes(codes.data(), K, packed);
}

}  // namespace mcpm::ref
