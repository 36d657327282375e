// Checked size arithmetic: the one helper for every size computed from values that come from a
// file or a flag (tensor shapes, config fields, --ctx, shard headers, vocabulary ids, ...).
// Nothing is allocated from such a value before it has passed through one of these functions.
// Every failure throws mcpm::Error naming where the value came from (file and field, or flag),
// the value and the limit it broke, e.g.
//   "/m/config.json: num_hidden_layers = 100000000000 is outside [1, 4096]"
//   "--ctx: KV cache bytes = 32 x 2 x 2305843009213693952 x 128 x 2 overflows the limit of 9223372036854775807"
// `where` names the source ("<file>", "<file>: tensor 'x'", "--ctx"); `what` names the field or quantity.
#pragma once
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <string_view>

namespace mcpm {

inline constexpr int64_t kMaxSize = std::numeric_limits<int64_t>::max();

// value must lie in [lo, hi]; returns it.
int64_t check_range(int64_t value, int64_t lo, int64_t hi, std::string_view where, std::string_view what);

// Product of non-negative factors, at most `limit`; throws when a factor is negative or the product
// (computed without overflow) exceeds the limit.
int64_t checked_product(std::initializer_list<int64_t> factors, std::string_view where, std::string_view what,
                        int64_t limit = kMaxSize);
// Sum of non-negative terms, at most `limit`.
int64_t checked_sum(std::initializer_list<int64_t> terms, std::string_view where, std::string_view what,
                    int64_t limit = kMaxSize);
// n elements of `elem_bytes` each, as a byte count that fits size_t and int64 (and `limit`).
size_t checked_bytes(int64_t n, size_t elem_bytes, std::string_view where, std::string_view what,
                     int64_t limit = kMaxSize);

// Overflow-free primitives for callers that report errors themselves (false on overflow).
inline bool mul_overflows(int64_t a, int64_t b, int64_t* out) { return __builtin_mul_overflow(a, b, out); }
inline bool add_overflows(int64_t a, int64_t b, int64_t* out) { return __builtin_add_overflow(a, b, out); }

}  // namespace mcpm
