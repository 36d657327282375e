// InfLLM v2 stage 1 on the CPU (block selection), Highway + ThreadPool.
//
// Query rows are (token, head of the kv group), token-major, and they are the vector lanes of every
// tile (as in attention_prefill.cpp): a tile of up to kTargetRows rows against kTileRows compressed
// keys at a time:
//   Qt [d, Rp]          scale * q, transposed (Rp = rows padded to kRowAlign)
//   S  [kTileRows, Rp]  S[j, r] = Qt[:, r] . c_j   (c_j widened to f32 once per tile)
// Tokens are processed in rounds of kGroupTokens, each in three phases over the pool:
//   A  (kv head, tile):            lse[r] = log sum_j exp(S2[j, r]) over the coarse kernels visible to
//                                  row r's token (online max/sum per lane)
//   B  (kv head, tile, C1 chunk):  Sacc[token, j] = sum over the G heads of exp(S1[j, r] - lse[r]),
//                                  0 for kernels not visible to the token
//   C  (kv head, token):           max-pool over the 5 kernels overlapping each block, forced blocks,
//                                  top-k (nth_element; ties -> lower id), ascending ids, -1 padding.
// When the (kv head, tile) items divide evenly over the threads (decode with n_kv a multiple of the
// thread count, or long prefill rounds), one pool run does all three phases per item instead.
// Scratch (plan region, see infllm_scratch_bytes): [threads][tile workspace], [threads][candidates],
// lse [n_kv, kGroupTokens, G], Sacc [n_kv, kGroupTokens, n_fine(n_ctx)].
#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/cpu/infllm_select.cpp"
#include "kernels/cpu/hwy_config.h"
// clang-format off
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "kernels/cpu/vec_math-inl.h"
// clang-format on
#include "core/error.h"
#include "kernels/cpu/infllm_internal.h"
#include "kernels/cpu/infllm_ops.h"
#include "kernels/cpu/scratch.h"

HWY_BEFORE_NAMESPACE();
namespace mcpm::cpu {
namespace HWY_NAMESPACE {

// Rows are padded to kSelectRowAlign lanes, so every target's vector width divides Rp.
using DS = hn::CappedTag<float, kSelectRowAlign>;

constexpr int kKeysMr = 4;  // compressed keys per register block
constexpr int kVecsMr = 4;  // row vectors per register block

// S[j, rc : rc + kV*N] = sum_i kf[j, i] * Qt[i, rc : ...] for keys j < kJ.
template <int kJ, int kV>
HWY_INLINE void DotBlock(const float* HWY_RESTRICT Qt, size_t Rp, size_t rc, const float* HWY_RESTRICT kf, size_t hd,
                         float* HWY_RESTRICT S) {
  const DS d;
  const size_t N = hn::Lanes(d);
  hn::Vec<DS> acc[kJ][kV];
  for (int j = 0; j < kJ; ++j)
    for (int v = 0; v < kV; ++v) acc[j][v] = hn::Zero(d);
  for (size_t i = 0; i < hd; ++i) {
    hn::Vec<DS> qv[kV];
    for (int v = 0; v < kV; ++v) qv[v] = hn::Load(d, Qt + i * Rp + rc + v * N);
    for (int j = 0; j < kJ; ++j) {
      const auto kb = hn::Set(d, kf[j * hd + i]);
      for (int v = 0; v < kV; ++v) acc[j][v] = hn::MulAdd(kb, qv[v], acc[j][v]);
    }
  }
  for (int j = 0; j < kJ; ++j)
    for (int v = 0; v < kV; ++v) hn::Store(acc[j][v], d, S + j * Rp + rc + v * N);
}

template <int kJ, int kV, class Fn>
HWY_INLINE void Dispatch2(int a, int b, Fn&& fn) {
  if constexpr (kJ > 0 && kV > 0) {
    if (a == kJ) {
      if (b == kV) return fn(std::integral_constant<int, kJ>(), std::integral_constant<int, kV>());
      return Dispatch2<kJ, kV - 1>(a, b, fn);
    }
    Dispatch2<kJ - 1, kV>(a, b, fn);
  }
}

// kf [nj, hd] = rows [j0, j0 + nj) of a compressed cache head, as f32 (f32 caches used in place).
const float* RowsF32(const void* base, DType dt, size_t hd, int64_t j0, int64_t nj, float* buf) {
  if (dt == DType::F32) return static_cast<const float*>(base) + size_t(j0) * hd;
  const DS d;
  const size_t N = hn::Lanes(d), n = size_t(nj) * hd;
  const uint16_t* src = static_cast<const uint16_t*>(base) + size_t(j0) * hd;
  size_t i = 0;
  for (; i + N <= n; i += N) hn::StoreU(LoadBf16(d, src + i), d, buf + i);
  for (; i < n; ++i) buf[i] = bf16_to_f32(src[i]);
  return buf;
}

// S [nj, Rp] = K_tile . Qt for rows [j0, j0 + nj) (nj <= kTileRows).
void TileDots(const SelectTile& a, const void* rows, int64_t j0, int64_t nj, float* kbuf, float* S) {
  const DS d;
  const size_t N = hn::Lanes(d), Rp = a.Rp, hd = a.hd;
  const float* kf = RowsF32(rows, a.dtype, hd, j0, nj, kbuf);
  for (size_t rc = 0; rc < Rp; rc += kVecsMr * N) {
    const int nv = int(std::min<size_t>(kVecsMr, (Rp - rc) / N));
    for (int64_t j = 0; j < nj; j += kKeysMr) {
      const int njr = int(std::min<int64_t>(kKeysMr, nj - j));
      Dispatch2<kKeysMr, kVecsMr>(njr, nv, [&](auto kj, auto kv) {
        DotBlock<decltype(kj)::value, decltype(kv)::value>(a.Qt, Rp, rc, kf + size_t(j) * hd, hd, S + size_t(j) * Rp);
      });
    }
  }
}

// Phase A: online max m[r] and sum l[r] of exp(S2[j, r]) over coarse rows j < lim[r] (rows [0, n)).
void CoarseLse(const SelectTile& a, const void* rows, int64_t n, const float* lim, float* ws, float* m, float* l) {
  const DS d;
  const size_t N = hn::Lanes(d), Rp = a.Rp;
  float* kbuf = ws;                                 // [kTileRows, hd]
  float* S = kbuf + size_t(kSelectTileRows) * a.hd;  // [kTileRows, Rp]
  const auto neg_inf = hn::Set(d, -std::numeric_limits<float>::infinity());
  for (int64_t j0 = 0; j0 < n; j0 += kSelectTileRows) {
    const int64_t nj = std::min(kSelectTileRows, n - j0);
    TileDots(a, rows, j0, nj, kbuf, S);
    for (size_t r = 0; r < Rp; r += N) {
      const auto vlim = hn::Load(d, lim + r);
      const auto m_old = hn::Load(d, m + r);
      auto vmax = m_old;
      for (int64_t j = 0; j < nj; ++j) {
        float* s = S + size_t(j) * Rp + r;
        const auto v = hn::IfThenElse(hn::Lt(hn::Set(d, float(j0 + j)), vlim), hn::Load(d, s), neg_inf);
        hn::Store(v, d, s);
        vmax = hn::Max(vmax, v);
      }
      const auto msafe = hn::IfThenZeroElse(hn::Eq(vmax, neg_inf), vmax);  // rows with nothing visible yet
      auto vsum = hn::Zero(d);
      for (int64_t j = 0; j < nj; ++j) vsum = hn::Add(vsum, hn::Exp(d, hn::Sub(hn::Load(d, S + size_t(j) * Rp + r), msafe)));
      const auto alpha = hn::Exp(d, hn::Sub(m_old, msafe));
      hn::Store(hn::MulAdd(hn::Load(d, l + r), alpha, vsum), d, l + r);
      hn::Store(vmax, d, m + r);
    }
  }
}

// Phase B: Sacc[tok * ld + j] = sum_h exp(S1[j, tok*G + h] - lse[r]) for fine rows [j0, j0 + n),
// 0 where j >= lim[r]. lse = +inf marks tokens without a visible coarse kernel (all zero).
void FineScores(const SelectTile& a, const void* rows, int64_t j0, int64_t n, const float* lim, const float* lse,
                int64_t G, int64_t n_tok, float* ws, float* Sacc, int64_t ld) {
  const DS d;
  const size_t N = hn::Lanes(d), Rp = a.Rp;
  float* kbuf = ws;
  float* S = kbuf + size_t(kSelectTileRows) * a.hd;
  for (int64_t jt = j0; jt < j0 + n; jt += kSelectTileRows) {
    const int64_t nj = std::min(kSelectTileRows, j0 + n - jt);
    TileDots(a, rows, jt, nj, kbuf, S);
    for (size_t r = 0; r < Rp; r += N) {
      const auto vlim = hn::Load(d, lim + r), vlse = hn::Load(d, lse + r);
      for (int64_t j = 0; j < nj; ++j) {
        float* s = S + size_t(j) * Rp + r;
        const auto p = hn::Exp(d, hn::Sub(hn::Load(d, s), vlse));
        hn::Store(hn::IfThenElseZero(hn::Lt(hn::Set(d, float(jt + j)), vlim), p), d, s);
      }
    }
    for (int64_t tok = 0; tok < n_tok; ++tok) {
      float* out = Sacc + tok * ld + jt;
      for (int64_t j = 0; j < nj; ++j) {
        const float* s = S + size_t(j) * Rp + size_t(tok * G);
        float sum = 0.0f;
        for (int64_t h = 0; h < G; ++h) sum += s[h];
        out[j] = sum;
      }
    }
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace mcpm::cpu
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace mcpm::cpu {

HWY_EXPORT(CoarseLse);
HWY_EXPORT(FineScores);

namespace {

constexpr int64_t kTargetRows = 64;     // query rows (tokens x group heads) per tile
constexpr int64_t kGroupTokens = 64;    // query tokens per round of the three phases
constexpr int64_t kChunkRows = 256;     // fine kernels per phase-B item
constexpr int64_t kFusedItemsPerThread = 4;  // (kv head, tile) items per thread for the one-barrier path
constexpr size_t kAlign = kCacheLine;

struct Candidate {
  float score;
  int32_t id;
};

struct Geometry {
  int64_t G, nq, Rp;  // group size, tokens per tile, padded rows per tile
};

Geometry geometry(int64_t n_heads, int64_t n_kv, int64_t T) {
  Geometry g;
  g.G = n_heads / n_kv;
  g.nq = std::max<int64_t>(1, std::min({kTargetRows / g.G, T, kGroupTokens}));
  g.Rp = int64_t(round_up(size_t(g.nq * g.G), size_t(kSelectRowAlign)));
  return g;
}

size_t tile_ws_floats(int64_t d, int64_t Rp) {
  // Qt [d, Rp], keys [kTileRows, d], S [kTileRows, Rp], m/l/lim/lse [Rp] each
  return round_up(size_t(d * Rp + kSelectTileRows * d + kSelectTileRows * Rp + 4 * Rp), kAlign / sizeof(float));
}

struct SelectScratch {
  float* ws;          // [nt][ws_floats]
  Candidate* cand;    // [nt][nb_max]
  float* lse;         // [n_kv, kGroupTokens, G]
  float* sacc;        // [n_kv, kGroupTokens, ld]
  size_t ws_floats;
  int64_t nb_max;
};

size_t select_bytes(int64_t max_T, int64_t n_heads, int64_t n_kv, int64_t d, int64_t n_ctx, const InfllmParams& p, int nt) {
  const Geometry geo = geometry(n_heads, n_kv, std::min(max_T, kGroupTokens));
  const size_t ws = tile_ws_floats(d, geo.Rp) * sizeof(float);
  const size_t cand = round_up(size_t(p.n_blocks(n_ctx)) * sizeof(Candidate), kAlign);
  const size_t lse = round_up(size_t(n_kv * kGroupTokens * geo.G) * sizeof(float), kAlign);
  const size_t sacc = round_up(size_t(n_kv * kGroupTokens * std::max<int64_t>(1, p.n_fine(n_ctx))) * sizeof(float), kAlign);
  return kAlign + size_t(nt) * (ws + cand) + lse + sacc;
}

// Qt and the per-row visibility limits of tile `tile` (tokens [t0, t0 + nq) of the round) for head g.
void build_tile(float* Qt, int64_t d, const float* q, int64_t n_heads, int64_t g, const Geometry& geo, int64_t row0_pos,
                int64_t tq0, int64_t nq, const InfllmParams& p, float scale, float* lim1, float* lim2) {
  const int64_t Rp = geo.Rp, R = nq * geo.G;
  std::fill(Qt, Qt + d * Rp, 0.0f);
  for (int64_t r = 0; r < R; ++r) {
    const float* qr = q + ((tq0 + r / geo.G) * n_heads + g * geo.G + r % geo.G) * d;
    for (int64_t i = 0; i < d; ++i) Qt[i * Rp + r] = scale * qr[i];
  }
  for (int64_t r = 0; r < Rp; ++r) {
    const int64_t pos = row0_pos + tq0 + r / geo.G;
    lim1[r] = r < R ? float(p.n_fine(pos + 1)) : 0.0f;
    lim2[r] = r < R ? float(p.n_coarse(pos + 1)) : 0.0f;
  }
}

// Phase C for one (kv head, token): block scores from Sacc, forced blocks, top-k, the index row.
void select_row(const InfllmParams& p, int64_t pos, int64_t n1, int64_t K, const float* sacc, Candidate* cand,
                int32_t* row, int64_t W) {
  const int64_t qb = pos / p.block_size, n1v = p.n_fine(pos + 1);
  const int64_t local_lo = std::max<int64_t>(0, qb - p.local_blocks);
  const int64_t n_init = std::min(p.init_blocks, local_lo);  // init blocks below the local range
  const int64_t n_forced = n_init + (qb - local_lo + 1);
  int64_t k = 0;
  if (n_forced >= K) {  // the forced set itself is cut: lowest ids first (ties among +inf)
    for (int64_t b = 0; b < n_init && k < K; ++b) row[k++] = int32_t(b);
    for (int64_t b = local_lo; b <= qb && k < K; ++b) row[k++] = int32_t(b);
  } else {
    int64_t nc = 0;
    for (int64_t b = n_init; b < local_lo; ++b) {
      const int64_t lo = std::max<int64_t>(InfllmParams::kPool * b - 1, 0);
      const int64_t hi = std::min(InfllmParams::kPool * b + 3, n1 - 1);
      float s = -std::numeric_limits<float>::infinity();
      for (int64_t j = lo; j <= hi; ++j) s = std::max(s, j < n1v ? sacc[j] : 0.0f);
      cand[nc++] = {std::isnan(s) ? -std::numeric_limits<float>::infinity() : s, int32_t(b)};  // keep a strict order
    }
    const int64_t n_dyn = std::min(K - n_forced, nc);
    auto better = [](const Candidate& x, const Candidate& y) { return x.score > y.score || (x.score == y.score && x.id < y.id); };
    if (n_dyn < nc) std::nth_element(cand, cand + n_dyn, cand + nc, better);
    std::sort(cand, cand + n_dyn, [](const Candidate& x, const Candidate& y) { return x.id < y.id; });
    // Merge: init blocks, dynamic blocks (all between init and local range), local blocks.
    for (int64_t b = 0; b < n_init; ++b) row[k++] = int32_t(b);
    for (int64_t i = 0; i < n_dyn; ++i) row[k++] = cand[i].id;
    for (int64_t b = local_lo; b <= qb; ++b) row[k++] = int32_t(b);
  }
  for (; k < W; ++k) row[k] = -1;
}

}  // namespace

size_t infllm_select_scratch_bytes(int64_t max_T, int64_t n_heads, int64_t n_kv, int64_t d, int64_t n_ctx,
                                   const InfllmParams& p, int n_threads) {
  return select_bytes(max_T, n_heads, n_kv, d, n_ctx, p, std::max(1, n_threads));
}

void infllm_select(const Context& ctx, const float* q, int64_t T, int64_t n_heads, int64_t pos0, const CompressedKeys& c,
                   const InfllmParams& p, float scale, const BlockIndex& idx, void* scratch) {
  MCPM_ASSERT(c.n_kv >= 1 && n_heads % c.n_kv == 0 && T >= 1 && pos0 >= 0);
  MCPM_ASSERT(idx.T == T && idx.width == p.topk_total);
  const int nt = ctx.pool->size();
  const int64_t n_kv = c.n_kv, d = c.d, L = pos0 + T, n1 = p.n_fine(L), K = p.row_width(L), W = idx.width;
  MCPM_ASSERT(n1 <= c.cap1 && p.n_coarse(L) <= c.cap2);
  const Geometry geo = geometry(n_heads, n_kv, T);
  const int64_t G = geo.G, ld = std::max<int64_t>(1, n1);

  // Scratch layout (sized by select_bytes for the plan's n_ctx >= L).
  SelectScratch s;
  char* base = reinterpret_cast<char*>(round_up(reinterpret_cast<uintptr_t>(scratch), kAlign));
  s.ws_floats = tile_ws_floats(d, geo.Rp);
  s.nb_max = p.n_blocks(L);
  s.ws = reinterpret_cast<float*>(base);
  base += size_t(nt) * s.ws_floats * sizeof(float);
  s.cand = reinterpret_cast<Candidate*>(base);
  base += size_t(nt) * round_up(size_t(s.nb_max) * sizeof(Candidate), kAlign);
  s.lse = reinterpret_cast<float*>(base);
  base += round_up(size_t(n_kv * kGroupTokens * G) * sizeof(float), kAlign);
  s.sacc = reinterpret_cast<float*>(base);

  const size_t cs2 = size_t(c.cap2 * d) * dtype_size(c.dtype), cs1 = size_t(c.cap1 * d) * dtype_size(c.dtype);
  auto head_rows = [&](const void* p0, size_t per_head, int64_t g) { return static_cast<const char*>(p0) + size_t(g) * per_head; };

  for (int64_t tg0 = 0; tg0 < T; tg0 += kGroupTokens) {
    const int64_t ng = std::min(kGroupTokens, T - tg0), n_tiles = (ng + geo.nq - 1) / geo.nq;
    // Per-thread tile workspace: Qt [d, Rp] | keys [kTileRows, d] + S [kTileRows, Rp] | 4 row vectors [Rp].
    struct TileWs {
      SelectTile a;
      float* Qt;
      float* work;
      float* rv[4];
    };
    auto tile_ws = [&](int tid) {
      TileWs t;
      float* w = s.ws + size_t(tid) * s.ws_floats;
      t.Qt = w;
      t.a.Qt = w;
      t.a.Rp = size_t(geo.Rp);
      t.a.hd = size_t(d);
      t.a.dtype = c.dtype;
      t.work = w + d * geo.Rp;
      t.rv[0] = t.work + kSelectTileRows * d + kSelectTileRows * geo.Rp;
      for (int i = 1; i < 4; ++i) t.rv[i] = t.rv[i - 1] + geo.Rp;
      return t;
    };

    // Phase A: lse over the visible coarse kernels of (kv head g, tile).
    auto phase_a = [&](TileWs& w, int64_t g, int64_t tile) {
      float *m = w.rv[0], *l = w.rv[1], *lim1 = w.rv[2], *lim2 = w.rv[3];
      const int64_t tq0 = tg0 + tile * geo.nq, nq = std::min(geo.nq, tg0 + ng - tq0);
      build_tile(w.Qt, d, q, n_heads, g, geo, pos0, tq0, nq, p, scale, lim1, lim2);
      for (int64_t r = 0; r < geo.Rp; ++r) m[r] = -std::numeric_limits<float>::infinity(), l[r] = 0.0f;
      const int64_t n2v = p.n_coarse(pos0 + tq0 + nq);  // rows visible to the tile's last token
      HWY_DYNAMIC_DISPATCH(CoarseLse)(w.a, head_rows(c.c2, cs2, g), n2v, lim2, w.work, m, l);
      for (int64_t r = 0; r < nq * G; ++r)
        s.lse[(g * kGroupTokens + (tq0 - tg0) + r / G) * G + r % G] =
            l[r] > 0.0f ? m[r] + std::log(l[r]) : std::numeric_limits<float>::infinity();
    };
    // Phase B: summed fine-kernel scores of (kv head g, tile), C1 rows of chunk ch.
    const int64_t n1_round = p.n_fine(pos0 + tg0 + ng);
    const int64_t n_chunks = std::max<int64_t>(1, (n1_round + kChunkRows - 1) / kChunkRows);
    auto phase_b = [&](TileWs& w, int64_t g, int64_t tile, int64_t ch) {
      float *lse_r = w.rv[0], *lim1 = w.rv[2], *lim2 = w.rv[3];
      const int64_t tq0 = tg0 + tile * geo.nq, nq = std::min(geo.nq, tg0 + ng - tq0);
      const int64_t n1v = p.n_fine(pos0 + tq0 + nq), j0 = ch * kChunkRows, j1 = std::min(n1v, j0 + kChunkRows);
      if (j0 >= j1) return;
      build_tile(w.Qt, d, q, n_heads, g, geo, pos0, tq0, nq, p, scale, lim1, lim2);
      for (int64_t r = 0; r < geo.Rp; ++r)
        lse_r[r] = r < nq * G ? s.lse[(g * kGroupTokens + (tq0 - tg0) + r / G) * G + r % G]
                              : std::numeric_limits<float>::infinity();
      HWY_DYNAMIC_DISPATCH(FineScores)(w.a, head_rows(c.c1, cs1, g), j0, j1 - j0, lim1, lse_r, G, nq, w.work,
                                       s.sacc + (g * kGroupTokens + (tq0 - tg0)) * ld, ld);
    };
    // Phase C: block scores and top-k of (kv head g, token tok of the round).
    auto candidates = [&](int tid) {
      return reinterpret_cast<Candidate*>(reinterpret_cast<char*>(s.cand) +
                                          size_t(tid) * round_up(size_t(s.nb_max) * sizeof(Candidate), kAlign));
    };
    auto phase_c = [&](int tid, int64_t g, int64_t tok) {
      const int64_t t = tg0 + tok;
      select_row(p, pos0 + t, n1, K, s.sacc + (g * kGroupTokens + tok) * ld, candidates(tid), idx.ids + (g * T + t) * W, W);
    };

    std::atomic<int64_t> next{0};
    const int64_t items = n_kv * n_tiles;
    if (items % nt == 0 || items >= kFusedItemsPerThread * nt) {
      // Enough (kv head, tile) items for every thread: each does all three phases for its tile (one
      // barrier per round; decode with n_kv a multiple of the thread count takes this path).
      ctx.pool->run([&](int tid, int) {
        TileWs w = tile_ws(tid);
        for (int64_t it = next.fetch_add(1); it < items; it = next.fetch_add(1)) {
          const int64_t g = it / n_tiles, tile = it % n_tiles, tq0 = tile * geo.nq;
          phase_a(w, g, tile);
          if (n1_round > 0)
            for (int64_t ch = 0; ch < n_chunks; ++ch) phase_b(w, g, tile, ch);
          for (int64_t tok = tq0; tok < std::min(ng, tq0 + geo.nq); ++tok) phase_c(tid, g, tok);
        }
      });
      continue;
    }
    // Otherwise three phases, phase B also split over chunks of C1 (decode with few kv heads).
    ctx.pool->run([&](int tid, int) {
      TileWs w = tile_ws(tid);
      for (int64_t it = next.fetch_add(1); it < items; it = next.fetch_add(1)) phase_a(w, it / n_tiles, it % n_tiles);
    });
    next = 0;
    const int64_t items_b = items * n_chunks;
    if (n1_round > 0)
      ctx.pool->run([&](int tid, int) {
        TileWs w = tile_ws(tid);
        for (int64_t it = next.fetch_add(1); it < items_b; it = next.fetch_add(1))
          phase_b(w, it / (n_tiles * n_chunks), (it / n_chunks) % n_tiles, it % n_chunks);
      });
    next = 0;
    const int64_t items_c = n_kv * ng;
    ctx.pool->run([&](int tid, int) {
      for (int64_t it = next.fetch_add(1); it < items_c; it = next.fetch_add(1)) phase_c(tid, it / ng, it % ng);
    });
  }
}

}  // namespace mcpm::cpu
#endif  // HWY_ONCE
