// SentencePiece backend (see spm_model.h).
#include "tokenizer/spm_model.h"

#include <sentencepiece_processor.h>

#include "core/error.h"

namespace mcpm {

SpmModel::SpmModel(const std::string& path) : path_(path), sp_(std::make_unique<sentencepiece::SentencePieceProcessor>()) {
  const auto st = sp_->Load(path);
  MCPM_CHECK(st.ok(), "{}: cannot load the SentencePiece model ({})", path, st.ToString());
  MCPM_CHECK(sp_->GetPieceSize() > 0, "{}: the SentencePiece model has no pieces", path);
}

SpmModel::~SpmModel() = default;

std::vector<int32_t> SpmModel::encode_raw(std::string_view text) const {
  std::vector<int> ids;
  const auto st = sp_->Encode(text, &ids);
  MCPM_CHECK(st.ok(), "{}: SentencePiece encode failed ({})", path_, st.ToString());
  return std::vector<int32_t>(ids.begin(), ids.end());
}

void SpmModel::encode(std::string_view segment, std::vector<int32_t>& out) const {
  if (segment.empty()) return;
  std::string s;
  s.reserve(segment.size() + 1);
  s += ' ';
  s.append(segment);
  const auto ids = encode_raw(s);
  out.insert(out.end(), ids.begin(), ids.end());
}

std::string SpmModel::decode_raw(const std::vector<int32_t>& ids) const {
  std::string text;
  const auto st = sp_->Decode(std::vector<int>(ids.begin(), ids.end()), &text);
  MCPM_CHECK(st.ok(), "{}: SentencePiece decode failed ({})", path_, st.ToString());
  return text;
}

int32_t SpmModel::size() const { return sp_->GetPieceSize(); }
std::string SpmModel::piece(int32_t id) const { return sp_->IdToPiece(id); }
bool SpmModel::is_control(int32_t id) const { return sp_->IsControl(id); }
bool SpmModel::is_unknown(int32_t id) const { return sp_->IsUnknown(id); }
int32_t SpmModel::bos_id() const { return sp_->bos_id(); }
int32_t SpmModel::eos_id() const { return sp_->eos_id(); }
int32_t SpmModel::unk_id() const { return sp_->unk_id(); }

}  // namespace mcpm
