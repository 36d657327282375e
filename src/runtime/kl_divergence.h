// KL divergence of a model's next-token distributions against a base model's (read from a
// base-logits file, runtime/logits_file.h), with the statistics llama.cpp's
// `llama-perplexity --kl-divergence` prints: PPL of both and their ratio / difference, the KLD
// distribution (mean, max, percentiles, median, min), the target-token probability difference Δp
// and the same-top-1 rate. Uncertainties are llama.cpp's (standard error of the mean; covariance
// for the ratio).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/json.h"
#include "runtime/logits_file.h"

namespace mcpm {

// One token: KL(base || model) in nats, with both distributions renormalised in double.
struct KlToken {
  double kld = 0;
  double nll = 0;       // -log p_model(target)
  double nll_base = 0;  // -log p_base(target) (the base file's exact value)
  double p_diff = 0;    // p_model(target) - p_base(target)
  bool same_top = false;
};
KlToken kl_token(const float* logits, int64_t V, int32_t target, const BaseRecord& base);

struct KlSummary {
  int64_t count = 0;
  double ppl = 0, ppl_unc = 0, ppl_base = 0, ppl_base_unc = 0, cor = 0;
  double ln_ratio = 0, ln_ratio_unc = 0, ratio = 0, ratio_unc = 0, diff = 0, diff_unc = 0;
  double kld_mean = 0, kld_unc = 0;
  // KLD and Δp quantiles at these fractions (llama.cpp's list), plus max / median / min.
  double kld_max = 0, kld_median = 0, kld_min = 0;
  std::vector<std::pair<double, double>> kld_q;  // (fraction, value)
  double p_mean = 0, p_unc = 0, p_max = 0, p_median = 0, p_min = 0, p_rms = 0, p_rms_unc = 0;
  std::vector<std::pair<double, double>> p_q;
  double same_top = 0, same_top_unc = 0;
};

class KlAccumulator {
 public:
  void add(const KlToken& t);
  int64_t count() const { return count_; }
  double mean_kld() const { return count_ ? sum_kld_ / double(count_) : 0.0; }
  KlSummary summarize() const;  // needs count() >= 2

 private:
  int64_t count_ = 0, n_same_top_ = 0;
  double sum_nll_ = 0, sum_nll2_ = 0, sum_nll_base_ = 0, sum_nll_base2_ = 0, sum_nll_nll_base_ = 0;
  double sum_kld_ = 0, sum_kld2_ = 0, sum_p_ = 0, sum_p2_ = 0, sum_p4_ = 0;
  std::vector<float> kld_, p_diff_;
};

// llama.cpp-style text ("====== Perplexity statistics ======" ...).
std::string format_kl_report(const KlSummary& s);
json kl_summary_json(const KlSummary& s);

// Interpolated percentile of sorted values (llama.cpp's definition).
double percentile_sorted(const std::vector<float>& sorted, double fraction);

}  // namespace mcpm
