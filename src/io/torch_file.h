// A reader and writer for the token-id lists PyTorch saves with torch.save: FR-Spec frequency files
// (freq_{N}.pt, CPM.cu / thunlp FR-Spec), a zip archive holding `<name>/data.pkl`, a pickle of a
// Python list of ints (or of an int64/int32 tensor whose storage is `<name>/data/<key>`).
// The pickle machine understands the opcodes those files use (protocols 2-5: lists, ints, tuples,
// memo, globals, persistent ids, REDUCE for torch._utils._rebuild_tensor_v2); anything else is an
// error naming the opcode and offset. No Python or libtorch needed.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace mcpm {

// The token ids of a torch.save'd list or 1-D integer tensor. Throws mcpm::Error naming the file.
std::vector<int64_t> read_torch_id_list(const std::string& path);

// Writes ids as torch.save(list) would (zip archive, pickle protocol 2), loadable by torch.load.
void write_torch_id_list(const std::string& path, const std::vector<int64_t>& ids);

// Minimal stored-only zip archive access (torch archives store their records uncompressed).
struct ZipEntry {
  std::string name;
  uint64_t offset = 0, size = 0;  // data offset and size in the file
};
std::vector<ZipEntry> read_zip_directory(const std::string& path, const std::string& bytes);

}  // namespace mcpm
