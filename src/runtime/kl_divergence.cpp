#include "runtime/kl_divergence.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace mcpm {

namespace {
constexpr double kKldFractions[] = {0.999, 0.99, 0.95, 0.90, 0.10, 0.05, 0.01, 0.001};
constexpr double kPFractions[] = {0.999, 0.99, 0.95, 0.90, 0.75, 0.25, 0.10, 0.05, 0.01, 0.001};

// llama.cpp's mean_and_uncertainty: mean and the standard error of the mean.
std::pair<double, double> mean_unc(double sum, double sum2, int64_t n) {
  if (n < 1) return {0.0, 0.0};
  const double f = sum / double(n);
  const double df = sum2 / double(n) - f * f;
  return {f, df > 0 && n > 10 ? std::sqrt(df / double(n - 1)) : 0.0};
}

double covariance(double a, double b, double ab, int64_t n) {
  if (n < 10) return 0.0;
  return (ab / double(n) - (a / double(n)) * (b / double(n))) / double(n - 1);
}

double median_sorted(const std::vector<float>& v) {
  const size_t n = v.size();
  return n % 2 == 0 ? 0.5 * (double(v[n / 2]) + double(v[n / 2 - 1])) : double(v[n / 2]);
}
}  // namespace

double percentile_sorted(const std::vector<float>& v, double fraction) {
  MCPM_ASSERT(!v.empty());
  if (fraction <= 0) return v.front();
  if (fraction >= 1) return v.back();
  double p = fraction * double(v.size() - 1);
  const size_t ip = size_t(p);
  p -= double(ip);
  return (1 - p) * double(v[ip]) + p * double(v[std::min(ip + 1, v.size() - 1)]);
}

KlToken kl_token(const float* logits, int64_t V, int32_t target, const BaseRecord& base) {
  KlToken t;
  int32_t am = 0;
  double mx = logits[0];
  for (int64_t i = 1; i < V; ++i)
    if (logits[i] > mx) mx = logits[i], am = int32_t(i);
  double zq = 0, bmax = -INFINITY;
  for (int64_t i = 0; i < V; ++i) {
    zq += std::exp(double(logits[i]) - mx);
    bmax = std::max(bmax, double(f16_to_f32(base.logp[i])));
  }
  const double lse_q = mx + std::log(zq);
  double zb = 0;
  for (int64_t i = 0; i < V; ++i) zb += std::exp(double(f16_to_f32(base.logp[i])) - bmax);
  const double lse_b = bmax + std::log(zb);  // ~0: the stored values are log-probabilities up to fp16 rounding
  double kld = 0;
  for (int64_t i = 0; i < V; ++i) {
    const double lb = double(f16_to_f32(base.logp[i])) - lse_b;
    kld += std::exp(lb) * (lb - (double(logits[i]) - lse_q));
  }
  t.kld = kld;
  t.nll = lse_q - double(logits[target]);
  t.nll_base = double(base.nll);
  t.p_diff = std::exp(-t.nll) - std::exp(-t.nll_base);
  t.same_top = am == base.argmax;
  return t;
}

void KlAccumulator::add(const KlToken& t) {
  ++count_;
  sum_nll_ += t.nll;
  sum_nll2_ += t.nll * t.nll;
  sum_nll_base_ += t.nll_base;
  sum_nll_base2_ += t.nll_base * t.nll_base;
  sum_nll_nll_base_ += t.nll * t.nll_base;
  sum_kld_ += t.kld;
  sum_kld2_ += t.kld * t.kld;
  sum_p_ += t.p_diff;
  sum_p2_ += t.p_diff * t.p_diff;
  sum_p4_ += t.p_diff * t.p_diff * t.p_diff * t.p_diff;
  n_same_top_ += t.same_top ? 1 : 0;
  kld_.push_back(float(t.kld));
  p_diff_.push_back(float(t.p_diff));
}

KlSummary KlAccumulator::summarize() const {
  MCPM_CHECK(count_ >= 2, "KL divergence: need at least 2 scored tokens (got {})", count_);
  KlSummary s;
  s.count = count_;
  const auto lp = mean_unc(sum_nll_, sum_nll2_, count_);
  const auto lpb = mean_unc(sum_nll_base_, sum_nll_base2_, count_);
  s.ppl = std::exp(lp.first);
  s.ppl_unc = s.ppl * lp.second;
  s.ppl_base = std::exp(lpb.first);
  s.ppl_base_unc = s.ppl_base * lpb.second;
  const double cov = covariance(sum_nll_, sum_nll_base_, sum_nll_nll_base_, count_);
  s.cor = lp.second > 0 && lpb.second > 0 ? cov / (lp.second * lpb.second) : 0.0;
  s.ln_ratio = lp.first - lpb.first;
  s.ln_ratio_unc = std::sqrt(std::max(0.0, lp.second * lp.second + lpb.second * lpb.second - 2.0 * cov));
  s.ratio = std::exp(s.ln_ratio);
  s.ratio_unc = s.ratio * s.ln_ratio_unc;
  s.diff = s.ppl - s.ppl_base;
  s.diff_unc = std::sqrt(
      std::max(0.0, s.ppl_unc * s.ppl_unc + s.ppl_base_unc * s.ppl_base_unc - 2.0 * s.ppl * s.ppl_base * cov));

  std::vector<float> kld = kld_, pd = p_diff_;
  std::sort(kld.begin(), kld.end());
  std::sort(pd.begin(), pd.end());
  const auto k = mean_unc(sum_kld_, sum_kld2_, count_);
  s.kld_mean = k.first;
  s.kld_unc = k.second;
  s.kld_max = kld.back();
  s.kld_min = kld.front();
  s.kld_median = median_sorted(kld);
  for (double f : kKldFractions) s.kld_q.push_back({f, percentile_sorted(kld, f)});

  const auto p = mean_unc(sum_p_, sum_p2_, count_);
  s.p_mean = p.first;
  s.p_unc = p.second;
  s.p_max = pd.back();
  s.p_min = pd.front();
  s.p_median = median_sorted(pd);
  for (double f : kPFractions) s.p_q.push_back({f, percentile_sorted(pd, f)});
  const auto mse = mean_unc(sum_p2_, sum_p4_, count_);
  s.p_rms = std::sqrt(mse.first);
  s.p_rms_unc = s.p_rms > 0 ? 0.5 / s.p_rms * mse.second : 0.0;

  s.same_top = double(n_same_top_) / double(count_);
  s.same_top_unc = std::sqrt(s.same_top * (1.0 - s.same_top) / double(count_ - 1));
  return s;
}

std::string format_kl_report(const KlSummary& s) {
  std::string o;
#define line(...) o += fmt::format(__VA_ARGS__)
  auto pct = [](double f) { return fmt::format("{:4.1f}%", 100.0 * f); };
  line("====== Perplexity statistics ======\n");
  line("Mean PPL(Q)                   : {:10.6f} ± {:10.6f}\n", s.ppl, s.ppl_unc);
  line("Mean PPL(base)                : {:10.6f} ± {:10.6f}\n", s.ppl_base, s.ppl_base_unc);
  line("Cor(ln(PPL(Q)), ln(PPL(base))): {:6.2f}%\n", 100.0 * s.cor);
  line("Mean ln(PPL(Q)/PPL(base))     : {:10.6f} ± {:10.6f}\n", s.ln_ratio, s.ln_ratio_unc);
  line("Mean PPL(Q)/PPL(base)         : {:10.6f} ± {:10.6f}\n", s.ratio, s.ratio_unc);
  line("Mean PPL(Q)-PPL(base)         : {:10.6f} ± {:10.6f}\n", s.diff, s.diff_unc);
  line("\n====== KL divergence statistics ======\n");
  line("Mean    KLD: {:10.6f} ± {:10.6f}\n", s.kld_mean, s.kld_unc);
  line("Maximum KLD: {:10.6f}\n", s.kld_max);
  for (const auto& [f, v] : s.kld_q) {
    if (f < 0.5 && o.find("Median  KLD") == std::string::npos) line("Median  KLD: {:10.6f}\n", s.kld_median);
    line("{}   KLD: {:10.6f}\n", pct(f), v);
  }
  line("Minimum KLD: {:10.6f}\n", s.kld_min);
  line("\n====== Token probability statistics ======\n");
  line("Mean    Δp: {:6.3f} ± {:5.3f} %\n", 100.0 * s.p_mean, 100.0 * s.p_unc);
  line("Maximum Δp: {:6.3f}%\n", 100.0 * s.p_max);
  for (const auto& [f, v] : s.p_q) {
    if (f < 0.5 && o.find("Median  Δp") == std::string::npos) line("Median  Δp: {:6.3f}%\n", 100.0 * s.p_median);
    line("{}   Δp: {:6.3f}%\n", pct(f), 100.0 * v);
  }
  line("Minimum Δp: {:6.3f}%\n", 100.0 * s.p_min);
  line("RMS Δp    : {:6.3f} ± {:5.3f} %\n", 100.0 * s.p_rms, 100.0 * s.p_rms_unc);
  line("Same top p: {:6.3f} ± {:5.3f} %\n", 100.0 * s.same_top, 100.0 * s.same_top_unc);
#undef line
  return o;
}

json kl_summary_json(const KlSummary& s) {
  json q = json::object(), pq = json::object();
  for (const auto& [f, v] : s.kld_q) q[fmt::format("{:g}", 100.0 * f)] = v;
  for (const auto& [f, v] : s.p_q) pq[fmt::format("{:g}", 100.0 * f)] = v;
  return json{{"tokens", s.count},
              {"ppl", s.ppl},
              {"ppl_unc", s.ppl_unc},
              {"ppl_base", s.ppl_base},
              {"ppl_base_unc", s.ppl_base_unc},
              {"ln_ppl_ratio", s.ln_ratio},
              {"ln_ppl_ratio_unc", s.ln_ratio_unc},
              {"ppl_ratio", s.ratio},
              {"ppl_diff", s.diff},
              {"ppl_diff_unc", s.diff_unc},
              {"kld_mean", s.kld_mean},
              {"kld_unc", s.kld_unc},
              {"kld_max", s.kld_max},
              {"kld_median", s.kld_median},
              {"kld_min", s.kld_min},
              {"kld_percentiles", q},
              {"p_diff_mean", s.p_mean},
              {"p_diff_rms", s.p_rms},
              {"p_diff_median", s.p_median},
              {"p_diff_percentiles", pq},
              {"same_top", s.same_top},
              {"same_top_unc", s.same_top_unc}};
}

}  // namespace mcpm
