// Helpers of the CUDA tests (see cuda_test_util.h).
#include "cuda_test_util.h"

#include <cmath>

namespace mcpm::test {

std::unique_ptr<Backend> cuda_backend(bool exact, bool graphs) {
  BackendOptions o;
  o.bf16_activations = !exact;
  o.graphs = graphs;
  return make_backend("cuda", o);
}

DeviceBuffers::DeviceBuffers(Backend& be, const std::vector<size_t>& bytes, int64_t ws_T, int64_t ws_K) {
  MemoryPlan plan;
  std::vector<size_t> idx;
  for (size_t i = 0; i < bytes.size(); ++i) idx.push_back(plan.add("buf" + std::to_string(i), "test", bytes[i]));
  const size_t ws = ws_T > 0 ? be.workspace_bytes(ws_T, ws_K) : 0;
  const size_t ws_idx = ws ? plan.add("workspace", "test", ws) : 0;
  char* base = static_cast<char*>(be.allocate(plan));
  for (size_t i : idx) ptrs_.push_back(base + plan.regions()[i].offset);
  if (ws) be.bind_workspace(base + plan.regions()[ws_idx].offset, ws);
}

double nmse(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  double num = 0.0, den = 0.0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    const double d = double(a[i]) - double(b[i]);
    if (std::isnan(d)) return INFINITY;
    num += d * d;
    den += double(b[i]) * double(b[i]);
  }
  return den > 0.0 ? num / den : num;
}

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double m = 0.0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    const double d = std::fabs(double(a[i]) - double(b[i]));
    if (!(d <= m)) m = std::isnan(d) ? INFINITY : d;
  }
  return m;
}

std::vector<bf16_t> to_bf16(const std::vector<float>& v) {
  std::vector<bf16_t> r(v.size());
  for (size_t i = 0; i < v.size(); ++i) r[i] = f32_to_bf16(v[i]);
  return r;
}

std::vector<float> from_bf16(const std::vector<bf16_t>& v) {
  std::vector<float> r(v.size());
  for (size_t i = 0; i < v.size(); ++i) r[i] = bf16_to_f32(v[i]);
  return r;
}

}  // namespace mcpm::test
