#include <gtest/gtest.h>

#include <cstring>

#include "core/error.h"
#include "core/memory_plan.h"

using namespace mcpm;

TEST(MemoryPlan, RegionsAreAlignedDisjointAndSummarised) {
  MemoryPlan p;
  const size_t a = p.add("a", "weights", 1000), b = p.add("b", "kv", 3), c = p.add("c", "weights", 4096);
  Arena arena(p);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(arena.region(a)) % MemoryPlan::kAlign, 0u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(arena.region(b)) % MemoryPlan::kAlign, 0u);
  EXPECT_GE(static_cast<char*>(arena.region(b)) - static_cast<char*>(arena.region(a)), 1000);
  EXPECT_GE(static_cast<char*>(arena.region(c)) - static_cast<char*>(arena.region(b)), 3);
  std::memset(arena.region(c), 1, 4096);
  EXPECT_EQ(p.category_bytes("weights"), 5096u);
  EXPECT_NE(p.summary().find("total"), std::string::npos);
}

TEST(MemoryPlan, ImpossiblePlanIsAClearError) {
  MemoryPlan p;
  p.add("kv_cache", "kv", size_t(1) << 50);  // 1 PiB
  try {
    Arena arena(p);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--ctx"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("kv"), std::string::npos) << e.what();
  }
}

TEST(MemoryPlan, MappedRegionsAreCountedButNotAllocated) {
  MemoryPlan p;
  p.add("a", "weights", 1000);
  const size_t m = p.add_mapped("w", "mapped", size_t(1) << 40);  // 1 TiB in a file: no allocation
  p.add("b", "kv", 10);
  EXPECT_TRUE(p.regions()[m].mapped);
  EXPECT_EQ(p.mapped_bytes(), size_t(1) << 40);
  EXPECT_EQ(p.category_bytes("mapped"), size_t(1) << 40);
  EXPECT_EQ(p.total_bytes(), 5 * MemoryPlan::kAlign);  // 1024 + 256
  Arena arena(p);
  EXPECT_EQ(arena.size(), p.total_bytes());
  EXPECT_NE(p.summary().find("read in place"), std::string::npos) << p.summary();
}
