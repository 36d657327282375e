// cuBLASLt GEMM wrapper (see gemm_lt.h).
#include "kernels/cuda/gemm_lt.h"

#include <cublasLt.h>

#include "kernels/cuda/check.h"

namespace mcpm::cuda {

struct GemmLt::Plan {
  bool ok = false;
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  cublasLtMatmulAlgo_t algo{};
  ~Plan() {
    if (a) cublasLtMatrixLayoutDestroy(a);
    if (b) cublasLtMatrixLayoutDestroy(b);
    if (c) cublasLtMatrixLayoutDestroy(c);
    if (desc) cublasLtMatmulDescDestroy(desc);
  }
};

namespace {
constexpr int kMaxAlign = 256;  // cuBLASLt's default (and largest useful) alignment preference
int alignment(const void* p) {
  const uintptr_t v = reinterpret_cast<uintptr_t>(p);
  int a = 1;
  while (a < kMaxAlign && (v & uintptr_t(2 * a - 1)) == 0) a *= 2;
  return a;
}
}  // namespace

GemmLt::GemmLt() {
  cublasLtHandle_t h = nullptr;
  MCPM_CUBLAS_CHECK(cublasLtCreate(&h));
  handle_ = h;
}

GemmLt::~GemmLt() {
  plans_.clear();
  if (handle_) cublasLtDestroy(static_cast<cublasLtHandle_t>(handle_));
}

void GemmLt::set_workspace(void* p, size_t bytes) {
  ws_ = p;
  ws_bytes_ = bytes;
  plans_.clear();
}

GemmLt::Plan* GemmLt::plan_for(const Key& key) {
  auto it = plans_.find(key);
  if (it != plans_.end()) return it->second.get();
  const auto [N, K, T, dtype, align_x, align_w, align_y] = key;
  auto plan = std::make_unique<Plan>();
  const cudaDataType_t ab = DType(dtype) == DType::BF16 ? CUDA_R_16BF : CUDA_R_32F;
  MCPM_CUBLAS_CHECK(cublasLtMatmulDescCreate(&plan->desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  const cublasOperation_t op_t = CUBLAS_OP_T, op_n = CUBLAS_OP_N;
  MCPM_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(plan->desc, CUBLASLT_MATMUL_DESC_TRANSA, &op_t, sizeof(op_t)));
  MCPM_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(plan->desc, CUBLASLT_MATMUL_DESC_TRANSB, &op_n, sizeof(op_n)));
  MCPM_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&plan->a, ab, uint64_t(K), uint64_t(N), K));  // W: [K, N], ld K
  MCPM_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&plan->b, ab, uint64_t(K), uint64_t(T), K));  // x: [K, T], ld K
  MCPM_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&plan->c, CUDA_R_32F, uint64_t(N), uint64_t(T), N));  // y: [N, T]

  cublasLtMatmulPreference_t pref = nullptr;
  MCPM_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
  const uint64_t ws = ws_bytes_;
  const uint32_t ax = uint32_t(align_x), aw = uint32_t(align_w), ay = uint32_t(align_y);
  cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws));
  cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &aw, sizeof(aw));
  cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &ax, sizeof(ax));
  cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &ay, sizeof(ay));
  cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &ay, sizeof(ay));
  cublasLtMatmulHeuristicResult_t result{};
  int n_results = 0;
  const cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic(static_cast<cublasLtHandle_t>(handle_), plan->desc, plan->a,
                                                           plan->b, plan->c, plan->c, pref, 1, &result, &n_results);
  cublasLtMatmulPreferenceDestroy(pref);
  if (st == CUBLAS_STATUS_SUCCESS && n_results > 0 && result.state == CUBLAS_STATUS_SUCCESS) {
    plan->algo = result.algo;
    plan->ok = true;
  }
  return (plans_[key] = std::move(plan)).get();
}

bool GemmLt::run(cudaStream_t stream, const void* x, int64_t T, const Matrix& W, float* y, float alpha, float beta) {
  const Key key{W.rows, W.cols, T, int(W.dtype), alignment(x), alignment(W.data), alignment(y)};
  Plan* p = plan_for(key);
  if (!p->ok) return false;
  MCPM_CUBLAS_CHECK(cublasLtMatmul(static_cast<cublasLtHandle_t>(handle_), p->desc, &alpha, W.data, p->a, x, p->b,
                                   &beta, y, p->c, y, p->c, &p->algo, ws_, ws_bytes_, stream));
  return true;
}

}  // namespace mcpm::cuda
