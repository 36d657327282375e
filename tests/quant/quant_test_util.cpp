#include "quant_test_util.h"

#include <cmath>
#include <cstdlib>

namespace mcpm::test {

LoadedModel load_cpu(const std::string& dir, bool exact, LoadOptions lo) {
  LoadedModel r;
  BackendOptions bo;
  bo.n_threads = 2;
  bo.bf16_activations = !exact;
  r.backend = make_cpu_backend(bo);
  if (lo.n_ctx == 0) lo.n_ctx = 256;
  lo.max_logit_rows = 256;
  lo.max_batch = 256;
  r.model = Model::load(dir, *r.backend, lo);
  return r;
}

std::vector<float> run_logits(Model& m, const std::vector<int32_t>& tokens) {
  m.truncate(0);
  m.forward(tokens.data(), int64_t(tokens.size()));
  std::vector<float> out(tokens.size() * size_t(m.spec().vocab_size));
  m.logits(0, int64_t(tokens.size()), out.data());
  return out;
}

double mean_kl(const std::vector<float>& base, const std::vector<float>& q, int64_t V) {
  const size_t T = base.size() / size_t(V);
  double total = 0.0;
  for (size_t t = 0; t < T; ++t) {
    const float* a = base.data() + t * size_t(V);
    const float* b = q.data() + t * size_t(V);
    double ma = -1e300, mb = -1e300, sa = 0, sb = 0;
    for (int64_t i = 0; i < V; ++i) ma = std::max(ma, double(a[i])), mb = std::max(mb, double(b[i]));
    for (int64_t i = 0; i < V; ++i) sa += std::exp(a[i] - ma), sb += std::exp(b[i] - mb);
    double kl = 0.0;
    for (int64_t i = 0; i < V; ++i) {
      const double la = a[i] - ma - std::log(sa), lb = b[i] - mb - std::log(sb);
      kl += std::exp(la) * (la - lb);
    }
    total += kl;
  }
  return total / double(T);
}

double max_rel_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double m = 0, s = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, double(std::fabs(a[i] - b[i]))), s = std::max(s, double(std::fabs(b[i])));
  return m / std::max(s, 1e-30);
}

std::string python_with_numpy() {
  for (const char* py : {"/usr/bin/python3", "python3"})
    if (std::system((std::string(py) + " -c 'import numpy' >/dev/null 2>&1").c_str()) == 0) return py;
  return "";
}

}  // namespace mcpm::test
