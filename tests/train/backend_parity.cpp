#include "backend_parity.h"

#include <gtest/gtest.h>

#include <cmath>

#include "common/test_util.h"
#include "core/rng.h"
#include "model/random_checkpoint.h"
#include "train/cpu_backend.h"
#include "train/model.h"
#include "train/params.h"

namespace mcpm::train::test_support {

double nmse(const std::vector<float>& a, const std::vector<float>& ref) {
  EXPECT_EQ(a.size(), ref.size());
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size() && i < ref.size(); ++i) {
    if (!std::isfinite(a[i])) return INFINITY;
    num += (double(a[i]) - ref[i]) * (double(a[i]) - ref[i]);
    den += double(ref[i]) * ref[i];
  }
  return den > 0 ? num / den : num;
}

float* Dev::put(const std::vector<float>& v) {
  auto* p = static_cast<float*>(be.allocate(v.size() * 4));
  be.upload(p, v.data(), v.size() * 4);
  return p;
}
int32_t* Dev::put(const std::vector<int32_t>& v) {
  auto* p = static_cast<int32_t*>(be.allocate(v.size() * 4));
  be.upload(p, v.data(), v.size() * 4);
  return p;
}
std::vector<float> Dev::get(const float* p, size_t n) {
  std::vector<float> v(n);
  be.download(v.data(), p, n * 4);
  return v;
}

void compare(const Op& op, const BackendFactory& make, double bound, const std::string& what, const std::string& label) {
  auto cpu = make_cpu_train_backend(2);
  auto cand = make();
  Dev c{*cpu}, g{*cand};
  const auto ref = op(c), out = op(g);
  ASSERT_EQ(ref.size(), out.size());
  for (size_t i = 0; i < ref.size(); ++i) EXPECT_LT(nmse(out[i], ref[i]), bound) << what << " output " << i << " (" << label << ")";
}

Op linear_products_op() {
  const int64_t R = 37, N = 45, K = 67;
  const auto x = test::random_floats(size_t(R * K), 30), W = test::random_floats(size_t(N * K), 31),
             dy = test::random_floats(size_t(R * N), 32), y0 = test::random_floats(size_t(R * N), 33),
             dW0 = test::random_floats(size_t(N * K), 34);
  return [=](Dev& d) {
    float* y = d.put(y0);
    float* y2 = d.put(y0);
    float* dx = d.put(x);
    float* dW = d.put(dW0);
    const float* xp = d.put(x);
    const float* Wp = d.put(W);
    const float* dyp = d.put(dy);
    d.be.linear_forward(xp, R, Wp, N, K, y, 0.7f, false);
    d.be.linear_forward(xp, R, Wp, N, K, y2, 0.7f, true);
    d.be.linear_backward_dx(dyp, R, Wp, N, K, 1.3f, dx, true);
    d.be.linear_backward_dw(dyp, xp, R, N, K, 0.9f, dW);
    return std::vector<std::vector<float>>{d.get(y, size_t(R * N)), d.get(y2, size_t(R * N)),
                                           d.get(dx, size_t(R * K)), d.get(dW, size_t(N * K))};
  };
}

void compare_model(const BackendFactory& make, double loss_rel, double grad_nmse, const std::string& label) {
  ModelSpec spec = make_spec(48, 2, 6, 2, 80, 61);
  spec.dim_model_base = 16;
  spec.rope_scaling.type = "longrope";
  spec.max_position = 64;
  spec.rope_scaling.original_max_position = 32;
  spec.rope_scaling.long_factor = longrope_ramp(4, 4.0f);
  spec.rope_scaling.short_factor = longrope_ramp(4, 1.5f);
  const int64_t B = 3, T = 23;
  ParamLayout layout(spec);
  std::vector<float> params(layout.total());
  init_params(layout, 7, 0.1, params.data());
  std::vector<int32_t> in(size_t(B * T)), tg(size_t(B * T));
  std::vector<float> wt(size_t(B * T));
  Rng rng(3);
  for (size_t i = 0; i < in.size(); ++i) {
    in[i] = int32_t(rng.next_u64() % 61);
    tg[i] = int32_t(rng.next_u64() % 61);
    wt[i] = i % 7 == 3 ? 0.0f : 1.0f / float(in.size());
  }
  auto run = [&](TrainBackend& be, std::vector<float>& grads) {
    TrainModel m(spec, be, B, T);
    m.set_params(params.data());
    m.zero_grads();
    const double loss = m.forward(in.data(), tg.data(), wt.data());
    m.backward();
    grads.resize(layout.total());
    m.get_grads(grads.data());
    return loss;
  };
  auto cpu = make_cpu_train_backend(2);
  auto cand = make();
  std::vector<float> gc, gg;
  const double lc = run(*cpu, gc), lg = run(*cand, gg);
  EXPECT_NEAR(lg, lc, loss_rel * std::fabs(lc)) << label;
  for (const ParamTensor& t : layout.tensors()) {
    const std::vector<float> a(gg.begin() + long(t.offset), gg.begin() + long(t.offset + t.numel)),
        b(gc.begin() + long(t.offset), gc.begin() + long(t.offset + t.numel));
    EXPECT_LT(nmse(a, b), grad_nmse) << t.spec.name << " (" << label << ")";
  }
}

}  // namespace mcpm::train::test_support
