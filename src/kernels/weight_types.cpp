#include "kernels/weight_types.h"

#include <cstring>

#include "core/cpu_features.h"
#include "core/error.h"
#include "kernels/cpu/qdot.h"
#include "kernels/ref/quant_ref.h"

namespace mcpm {

namespace {

size_t rb_f32(int64_t K) { return size_t(K) * 4; }
size_t rb_16(int64_t K) { return size_t(K) * 2; }
size_t rb_q8(int64_t K) { return size_t(K); }
size_t rb_q4(int64_t K) { return size_t(K / 2); }
size_t rb_t2(int64_t K) { return size_t((K + 127) / 128 * 32); }

#if MCPM_HAVE_X86_QDOT
#define MCPM_X86(t) cpu::qdot_##t##_avx2
#else
#define MCPM_X86(t) nullptr
#endif
#if MCPM_HAVE_X86_VNNI
#define MCPM_VNNI(t) cpu::qdot_##t##_vnni
#else
#define MCPM_VNNI(t) nullptr
#endif
#if defined(__aarch64__) && defined(__ARM_NEON)
#define MCPM_NEON(t) cpu::qdot_##t##_neon
#else
#define MCPM_NEON(t) nullptr
#endif
#define MCPM_DOTS(t) {cpu::qdot_##t##_scalar, MCPM_X86(t), MCPM_VNNI(t), MCPM_NEON(t)}
#if MCPM_HAVE_X86_QDOT
#define MCPM_X86_4(t) cpu::qdot_##t##x4_avx2
#else
#define MCPM_X86_4(t) nullptr
#endif
#if MCPM_HAVE_X86_VNNI
#define MCPM_VNNI_4(t) cpu::qdot_##t##x4_vnni
#else
#define MCPM_VNNI_4(t) nullptr
#endif
#define MCPM_DOTS4(t) {nullptr, MCPM_X86_4(t), MCPM_VNNI_4(t), nullptr}
#if MCPM_HAVE_X86_QDOT
#define MCPM_X86_ROWS(t) cpu::qdot_##t##_rows_avx2
#else
#define MCPM_X86_ROWS(t) nullptr
#endif
#if MCPM_HAVE_X86_VNNI
#define MCPM_VNNI_ROWS(t) cpu::qdot_##t##_rows_vnni
#else
#define MCPM_VNNI_ROWS(t) nullptr
#endif
#define MCPM_DOTS_ROWS(t) {nullptr, MCPM_X86_ROWS(t), MCPM_VNNI_ROWS(t), nullptr}

// Dense entries: packing = the dtype's own element storage (no codes); kernels in kernels/cpu/matmul*.
const WeightTypeInfo kF32{"f32", WType::Dense, DType::F32, 32, false, 0, 1, 1, rb_f32, nullptr, nullptr, {}, {}, {}};
const WeightTypeInfo kBF16{"bf16", WType::Dense, DType::BF16, 16, false, 0, 1, 1, rb_16, nullptr, nullptr, {}, {}, {}};
const WeightTypeInfo kF16{"f16", WType::Dense, DType::F16, 16, false, 0, 1, 1, rb_16, nullptr, nullptr, {}, {}, {}};
const WeightTypeInfo kQ8{"q8", WType::Q8, DType::I8, 8, true, 0, 32, kActBlockQ8, rb_q8, ref::pack_q8, ref::unpack_q8, MCPM_DOTS(q8), MCPM_DOTS4(q8), MCPM_DOTS_ROWS(q8)};
const WeightTypeInfo kQ4{"q4", WType::Q4, DType::U8, 4, false, 8, 32, kActBlockQ4, rb_q4, ref::pack_q4, ref::unpack_q4, MCPM_DOTS(q4), MCPM_DOTS4(q4), MCPM_DOTS_ROWS(q4)};
const WeightTypeInfo kT2{"t2", WType::T2, DType::U8, 2, false, 1, 128, kActBlockT2, rb_t2, ref::pack_t2, ref::unpack_t2, MCPM_DOTS(t2), MCPM_DOTS4(t2), MCPM_DOTS_ROWS(t2)};

}  // namespace

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::Scalar: return "scalar";
    case Isa::Avx2: return "avx2";
    case Isa::Avx512Vnni: return "avx512-vnni";
    case Isa::Neon: return "neon";
    default: return "?";
  }
}

const WeightTypeInfo& weight_type_info(WType type, DType dense_dtype) {
  switch (type) {
    case WType::Dense: return dense_dtype == DType::BF16 ? kBF16 : dense_dtype == DType::F16 ? kF16 : kF32;
    case WType::Q8: return kQ8;
    case WType::Q4: return kQ4;
    case WType::T2: return kT2;
    default: MCPM_ASSERT(false && "unknown weight type");
  }
  return kF32;
}

const WeightTypeInfo& weight_type_info(const Matrix& W) { return weight_type_info(W.type, W.dtype); }

const std::vector<const WeightTypeInfo*>& weight_types() {
  static const std::vector<const WeightTypeInfo*> all{&kF32, &kBF16, &kF16, &kQ8, &kQ4, &kT2};
  return all;
}

const WeightTypeInfo* weight_type_by_name(const char* name) {
  for (const WeightTypeInfo* t : weight_types())
    if (std::strcmp(t->name, name) == 0) return t;
  return nullptr;
}

std::vector<Isa> available_isas() {
  const CpuFeatures& f = cpu_features();
  std::vector<Isa> v;
  if (MCPM_HAVE_X86_VNNI && f.avx512vnni && f.avx512vl && f.avx2 && f.fma) v.push_back(Isa::Avx512Vnni);
  if (MCPM_HAVE_X86_QDOT && f.avx2 && f.fma) v.push_back(Isa::Avx2);
#if defined(__aarch64__) && defined(__ARM_NEON)
  v.push_back(Isa::Neon);
#endif
  v.push_back(Isa::Scalar);
  return v;
}

Isa best_isa() {
  static const Isa best = available_isas().front();
  return best;
}

void check_quant_matrix(const Matrix& W, const char* what) {
  MCPM_CHECK(W.type != WType::Dense, "{}: not a quantized matrix", what);
  MCPM_CHECK(W.cols > 0 && W.cols % kQBlock == 0, "{}: {} weights need K (in features) to be a multiple of 32, got {}",
             what, weight_type_info(W).name, W.cols);
  MCPM_CHECK(W.group > 0 && W.group % kQBlock == 0 && W.cols % W.group == 0,
             "{}: group size {} must be a multiple of 32 that divides K = {}", what, W.group, W.cols);
  MCPM_CHECK(W.data && W.scales, "{}: quantized matrix without codes or scales", what);
}

size_t quant_code_bytes(const Matrix& W) { return size_t(W.rows) * weight_type_info(W).row_bytes(W.cols); }

size_t quant_total_bytes(const Matrix& W) {
  if (W.type == WType::Dense) return size_t(W.rows * W.cols) * dtype_size(W.dtype);
  const size_t groups = size_t(W.rows * (W.cols / W.group));
  return quant_code_bytes(W) + groups * 4 * (W.mins ? 2 : 1) + (W.perm ? size_t(W.cols) * 4 : 0);
}

}  // namespace mcpm
