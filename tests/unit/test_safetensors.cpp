#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "common/test_util.h"
#include "io/safetensors.h"

using namespace mcpm;

namespace {
void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(bytes.data(), std::streamsize(bytes.size()));
}
std::string le64(uint64_t v) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[size_t(i)] = char(v >> (8 * i));
  return s;
}
std::string file_with_header(const std::string& header, const std::string& data) { return le64(header.size()) + header + data; }
}  // namespace

TEST(Safetensors, RoundTripIsBitExact) {
  const std::string dir = test::temp_dir();
  std::vector<uint16_t> a(3 * 5);
  for (size_t i = 0; i < a.size(); ++i) a[i] = uint16_t(i * 977 + 3);
  std::vector<float> b = test::random_floats(7, 1);
  std::vector<int32_t> c = {1, -2, 3};
  write_safetensors(dir + "/x.safetensors",
                    {{"a", DType::BF16, {3, 5}, a.data()}, {"b", DType::F32, {7}, b.data()}, {"c.i", DType::I32, {3}, c.data()}},
                    {{"format", "pt"}});
  SafetensorsFile f(dir + "/x.safetensors");
  ASSERT_EQ(f.tensors().size(), 3u);
  const TensorInfo* ta = f.find("a");
  ASSERT_TRUE(ta);
  EXPECT_EQ(ta->dtype, DType::BF16);
  EXPECT_EQ(ta->shape, (std::vector<int64_t>{3, 5}));
  EXPECT_EQ(0, std::memcmp(ta->data, a.data(), a.size() * 2));
  EXPECT_EQ(0, std::memcmp(f.find("b")->data, b.data(), b.size() * 4));
  EXPECT_EQ(0, std::memcmp(f.find("c.i")->data, c.data(), c.size() * 4));
  EXPECT_EQ(f.metadata().at("format"), "pt");
  EXPECT_EQ(f.find("nope"), nullptr);
}

TEST(Safetensors, BrokenFilesGiveClearErrors) {
  const std::string dir = test::temp_dir(), p = dir + "/bad.safetensors";
  write_bytes(p, "abc");
  MCPM_EXPECT_ERROR(SafetensorsFile{p}, "bad.safetensors", "truncated");
  write_bytes(p, le64(1000) + "{}");
  MCPM_EXPECT_ERROR(SafetensorsFile{p}, "header length 1000", "beyond the end");
  write_bytes(p, file_with_header("{\"a\": {\"dtype\": \"BF16\", \"shape\": [2], \"data_offsets\": [0, 4]", "xxxx"));
  MCPM_EXPECT_ERROR(SafetensorsFile{p}, "malformed JSON");
  write_bytes(p, file_with_header(R"({"a": {"dtype": "F8_E5M2", "shape": [2], "data_offsets": [0, 2]}})", "xx"));
  MCPM_EXPECT_ERROR(SafetensorsFile{p}, "'a'", "unknown dtype 'F8_E5M2'");
  write_bytes(p, file_with_header(R"({"a": {"dtype": "BF16", "shape": [4], "data_offsets": [0, 8]}})", "xxxx"));
  MCPM_EXPECT_ERROR(SafetensorsFile{p}, "'a'", "truncated");
  write_bytes(p, file_with_header(R"({"a": {"dtype": "BF16", "shape": [3], "data_offsets": [0, 4]}})", "xxxx"));
  MCPM_EXPECT_ERROR(SafetensorsFile{p}, "'a'", "needs 6");
  write_bytes(p, file_with_header(R"({"a": {"dtype": "BF16", "shape": [-1], "data_offsets": [0, 4]}})", "xxxx"));
  MCPM_EXPECT_ERROR(SafetensorsFile{p}, "bad shape");
  write_bytes(p, file_with_header(R"({"a": {"dtype": "BF16", "shape": [2]}})", "xxxx"));
  MCPM_EXPECT_ERROR(SafetensorsFile{p}, "data_offsets");
  // An element count that overflows int64 (2^32 x 2^32 wraps to 0) must not pass the byte check.
  write_bytes(p, file_with_header(R"({"a": {"dtype": "BF16", "shape": [4294967296, 4294967296], "data_offsets": [0, 0]}})", ""));
  MCPM_EXPECT_ERROR(SafetensorsFile{p}, "'a'", "[4294967296,4294967296]", "more elements");
  write_bytes(p, file_with_header(R"({"a": {"dtype": "F32", "shape": [3037000500, 3037000500, 0], "data_offsets": [0, 0]}})", ""));
  MCPM_EXPECT_ERROR(SafetensorsFile{p}, "'a'", "more elements");
  write_bytes(p, file_with_header(R"([1, 2])", ""));
  MCPM_EXPECT_ERROR(SafetensorsFile{p}, "not a JSON object");
  MCPM_EXPECT_ERROR(SafetensorsFile{dir + "/missing.safetensors"}, "missing.safetensors", "cannot open");
}

TEST(Safetensors, StreamingWriterChecksOrderAndSizes) {
  const std::string dir = test::temp_dir(), p = dir + "/s.safetensors";
  std::vector<float> a = test::random_floats(6, 2), b = test::random_floats(3, 3);
  const std::vector<TensorToWrite> plan = {{"z.a", DType::F32, {2, 3}, nullptr}, {"a.b", DType::F32, {3}, nullptr}};
  {
    SafetensorsWriter w(p, plan, {{"k", "v"}});
    EXPECT_EQ(w.next().name, "z.a");
    MCPM_EXPECT_ERROR(w.write("a.b", b.data(), 12), "'a.b' written where 'z.a' comes next");
    MCPM_EXPECT_ERROR(w.write("z.a", a.data(), 20), "'z.a' has 20 bytes", "needs 24");
    MCPM_EXPECT_ERROR(w.finish(), "0 of 2 tensors");
    w.write("z.a", a.data(), 24);
    w.write("a.b", b.data(), 12);
    EXPECT_TRUE(w.done());
    MCPM_EXPECT_ERROR(w.write("a.b", b.data(), 12), "after the last listed one");
    w.finish();
  }
  SafetensorsFile f(p);
  EXPECT_EQ(0, std::memcmp(f.find("z.a")->data, a.data(), 24));
  EXPECT_EQ(0, std::memcmp(f.find("a.b")->data, b.data(), 12));
  EXPECT_EQ(f.find("a.b")->data, f.find("z.a")->data + 24);  // listed order, not name order
  EXPECT_EQ(f.metadata().at("k"), "v");
  {  // unfinished: nothing is left behind
    SafetensorsWriter w(dir + "/u.safetensors", plan);
    w.write("z.a", a.data(), 24);
  }
  EXPECT_FALSE(std::filesystem::exists(dir + "/u.safetensors"));
  EXPECT_FALSE(std::filesystem::exists(dir + "/u.safetensors.tmp"));
  MCPM_EXPECT_ERROR(SafetensorsWriter(dir + "/d.safetensors", {plan[0], plan[0]}), "'z.a' listed twice");
}

namespace {
int64_t resident_bytes() {
  std::ifstream f("/proc/self/statm");
  int64_t size = 0, resident = 0;
  f >> size >> resident;
  return resident * sysconf(_SC_PAGESIZE);
}
}  // namespace

TEST(Safetensors, ReleasedPagesLeaveResidentMemoryAndReadBackEqual) {
  const std::string dir = test::temp_dir(), p = dir + "/big.safetensors";
  std::vector<uint8_t> big(size_t(16) << 20), small(100);
  for (size_t i = 0; i < big.size(); ++i) big[i] = uint8_t(i * 2654435761u >> 13);
  for (size_t i = 0; i < small.size(); ++i) small[i] = uint8_t(i + 1);
  write_safetensors(p, {{"w.big", DType::U8, {int64_t(big.size())}, big.data()}, {"w.small", DType::U8, {100}, small.data()}});
  SafetensorsFile f(p);
  const TensorInfo& t = *f.find("w.big");
  uint64_t sum = 0;
  for (size_t i = 0; i < t.nbytes; ++i) sum += t.data[i];
  const int64_t before = resident_bytes();
  release_pages(t.data, t.nbytes);
  const int64_t after = resident_bytes();
  EXPECT_GE(before - after, int64_t(15) << 20) << "resident " << before << " -> " << after;
  EXPECT_EQ(0, std::memcmp(t.data, big.data(), big.size()));  // faulted back in from the file
  EXPECT_EQ(0, std::memcmp(f.find("w.small")->data, small.data(), small.size()));
  EXPECT_GT(sum, 0u);
  release_pages(nullptr, 0);  // no-op
}
