#include "io/torch_file.h"

#include <cstring>
#include <functional>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <variant>

#include "core/error.h"

namespace mcpm {

namespace {

uint32_t rd32(const std::string& b, uint64_t at) {
  uint32_t v;
  std::memcpy(&v, b.data() + at, 4);
  return v;
}
uint16_t rd16(const std::string& b, uint64_t at) {
  uint16_t v;
  std::memcpy(&v, b.data() + at, 2);
  return v;
}

std::string read_all(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  MCPM_CHECK(f, "{}: cannot open (expected a torch.save file, e.g. FR-Spec freq_32768.pt)", path);
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// ---- pickle values ----
struct Value;
using ValuePtr = std::shared_ptr<Value>;
struct Value {
  enum Kind { None, Bool, Int, Str, List, Tuple, Dict, Global, PersId, Tensor, Mark } kind = None;
  int64_t i = 0;
  std::string s;                 // Str, Global ("module.name")
  std::vector<ValuePtr> items;   // List, Tuple, PersId (its tuple)
  std::vector<int64_t> tensor;   // Tensor data
};
ValuePtr make(Value::Kind k) {
  auto v = std::make_shared<Value>();
  v->kind = k;
  return v;
}
ValuePtr make_int(int64_t i) {
  auto v = make(Value::Int);
  v->i = i;
  return v;
}
ValuePtr make_str(std::string s, Value::Kind k = Value::Str) {
  auto v = make(k);
  v->s = std::move(s);
  return v;
}

class Unpickler {
 public:
  Unpickler(const std::string& where, const std::string& data, std::function<std::string(const std::string&)> record)
      : where_(where), d_(data), record_(std::move(record)) {}

  ValuePtr run() {
    for (;;) {
      MCPM_CHECK(p_ < d_.size(), "{}: the pickle ends without STOP", where_);
      const size_t at = p_;
      const uint8_t op = uint8_t(d_[p_++]);
      switch (op) {
        case 0x80: need(1), ++p_; break;          // PROTO
        case 0x95: need(8), p_ += 8; break;       // FRAME
        case ']': push(make(Value::List)); break; // EMPTY_LIST
        case ')': push(make(Value::Tuple)); break;
        case '}': push(make(Value::Dict)); break;
        case 'N': push(make(Value::None)); break;
        case 0x88: case 0x89: {                   // NEWTRUE / NEWFALSE
          auto v = make(Value::Bool);
          v->i = op == 0x88;
          push(v);
          break;
        }
        case '(': push(make(Value::Mark)); break;
        case 'K': need(1), push(make_int(uint8_t(d_[p_]))), p_ += 1; break;  // BININT1
        case 'M': need(2), push(make_int(rd16(d_, p_))), p_ += 2; break;     // BININT2
        case 'J': need(4), push(make_int(int32_t(rd32(d_, p_)))), p_ += 4; break;  // BININT
        case 0x8a: {                                                           // LONG1
          need(1);
          const size_t n = uint8_t(d_[p_++]);
          need(n);
          MCPM_CHECK(n <= 8, "{}: integer of {} bytes at offset {} is too large for a token id", where_, n, at);
          uint64_t v = 0;
          for (size_t k = 0; k < n; ++k) v |= uint64_t(uint8_t(d_[p_ + k])) << (8 * k);
          if (n > 0 && n < 8 && (uint8_t(d_[p_ + n - 1]) & 0x80)) v |= ~uint64_t(0) << (8 * n);  // sign-extend
          p_ += n;
          push(make_int(int64_t(v)));
          break;
        }
        case 'X': case 0x8c: {  // BINUNICODE (u32 length), SHORT_BINUNICODE (u8 length)
          const size_t len = op == 'X' ? (need(4), rd32(d_, p_)) : (need(1), uint8_t(d_[p_]));
          p_ += op == 'X' ? 4 : 1;
          need(len);
          push(make_str(d_.substr(p_, len)));
          p_ += len;
          break;
        }
        case 'c': {  // GLOBAL "module\nname\n"
          const size_t a = d_.find('\n', p_), b = a == std::string::npos ? a : d_.find('\n', a + 1);
          MCPM_CHECK(b != std::string::npos, "{}: truncated GLOBAL at offset {}", where_, at);
          push(make_str(d_.substr(p_, a - p_) + "." + d_.substr(a + 1, b - a - 1), Value::Global));
          p_ = b + 1;
          break;
        }
        case 0x93: {  // STACK_GLOBAL
          auto name = pop(), mod = pop();
          MCPM_CHECK(name->kind == Value::Str && mod->kind == Value::Str, "{}: bad STACK_GLOBAL at offset {}", where_, at);
          push(make_str(mod->s + "." + name->s, Value::Global));
          break;
        }
        case 'q': need(1), memo_[uint8_t(d_[p_])] = top(), p_ += 1; break;  // BINPUT
        case 'r': need(4), memo_[rd32(d_, p_)] = top(), p_ += 4; break;     // LONG_BINPUT
        case 0x94: memo_[memo_.size()] = top(); break;                      // MEMOIZE
        case 'h': need(1), push(memo(uint8_t(d_[p_]), at)), p_ += 1; break;  // BINGET
        case 'j': need(4), push(memo(rd32(d_, p_), at)), p_ += 4; break;    // LONG_BINGET
        case 'a': {  // APPEND
          auto v = pop();
          list_top(at)->items.push_back(v);
          break;
        }
        case 'e': {  // APPENDS
          auto items = pop_to_mark(at);
          auto l = list_top(at);
          l->items.insert(l->items.end(), items.begin(), items.end());
          break;
        }
        case 't': {  // TUPLE
          auto t = make(Value::Tuple);
          t->items = pop_to_mark(at);
          push(t);
          break;
        }
        case 0x85: case 0x86: case 0x87: {  // TUPLE1..3
          auto t = make(Value::Tuple);
          t->items.resize(size_t(op - 0x84));
          for (size_t k = t->items.size(); k-- > 0;) t->items[k] = pop();
          push(t);
          break;
        }
        case 'Q': {  // BINPERSID
          auto id = pop();
          auto v = make(Value::PersId);
          v->items = id->items;
          push(v);
          break;
        }
        case 'R': {  // REDUCE
          auto args = pop(), fn = pop();
          push(reduce(fn, args, at));
          break;
        }
        case 'u': case 's': {  // SETITEMS / SETITEM: dict contents are not needed (tensor metadata)
          if (op == 'u') pop_to_mark(at);
          else pop(), pop();
          break;
        }
        case '.': return pop();  // STOP
        default:
          fail("{}: pickle opcode 0x{:02x} at offset {} is not supported (expected a saved list or 1-D tensor of token "
               "ids)", where_, unsigned(op), at);
      }
    }
  }

 private:
  void need(size_t n) const {
    MCPM_CHECK(p_ + n <= d_.size(), "{}: the pickle is truncated at offset {}", where_, p_);
  }
  void push(ValuePtr v) { st_.push_back(std::move(v)); }
  ValuePtr top() const {
    MCPM_CHECK(!st_.empty(), "{}: pickle stack underflow", where_);
    return st_.back();
  }
  ValuePtr pop() {
    MCPM_CHECK(!st_.empty() && st_.back()->kind != Value::Mark, "{}: pickle stack underflow at offset {}", where_, p_ - 1);
    auto v = st_.back();
    st_.pop_back();
    return v;
  }
  std::vector<ValuePtr> pop_to_mark(size_t at) {
    size_t m = st_.size();
    while (m > 0 && st_[m - 1]->kind != Value::Mark) --m;
    MCPM_CHECK(m > 0, "{}: no MARK for the opcode at offset {}", where_, at);
    std::vector<ValuePtr> items(st_.begin() + int64_t(m), st_.end());
    st_.resize(m - 1);
    return items;
  }
  ValuePtr list_top(size_t at) {
    MCPM_CHECK(!st_.empty() && st_.back()->kind == Value::List, "{}: APPEND(S) without a list at offset {}", where_, at);
    return st_.back();
  }
  ValuePtr memo(uint32_t k, size_t at) {
    auto it = memo_.find(k);
    MCPM_CHECK(it != memo_.end(), "{}: memo entry {} used before it was set (offset {})", where_, k, at);
    return it->second;
  }
  ValuePtr reduce(const ValuePtr& fn, const ValuePtr& args, size_t at) {
    MCPM_CHECK(fn->kind == Value::Global && args->kind == Value::Tuple, "{}: unsupported REDUCE at offset {}", where_, at);
    if (fn->s == "collections.OrderedDict") return make(Value::Dict);
    MCPM_CHECK(fn->s == "torch._utils._rebuild_tensor_v2" || fn->s == "torch._utils._rebuild_tensor",
               "{}: the pickle calls {} (offset {}); expected a list or tensor of token ids", where_, fn->s, at);
    // (storage persid, storage_offset, size, stride, ...); persid = ('storage', StorageType, key, location, numel).
    MCPM_CHECK(args->items.size() >= 4 && args->items[0]->kind == Value::PersId, "{}: malformed tensor at offset {}", where_, at);
    const auto& pid = args->items[0]->items;
    MCPM_CHECK(pid.size() >= 5 && pid[1]->kind == Value::Global && pid[2]->kind == Value::Str,
               "{}: malformed tensor storage at offset {}", where_, at);
    const std::string& type = pid[1]->s;
    const size_t es = type == "torch.LongStorage" ? 8 : type == "torch.IntStorage" ? 4 : 0;
    MCPM_CHECK(es, "{}: tensor storage {} is not an integer type (expected torch.LongStorage or IntStorage)", where_, type);
    const auto& size = args->items[2]->items;
    MCPM_CHECK(args->items[2]->kind == Value::Tuple && size.size() == 1, "{}: the tensor is not 1-D", where_);
    const int64_t offset = args->items[1]->i, n = size[0]->i;
    const std::string data = record_("data/" + pid[2]->s);
    MCPM_CHECK(offset >= 0 && n >= 0 && size_t(offset + n) * es <= data.size(),
               "{}: tensor of {} elements at offset {} exceeds its storage of {} bytes", where_, n, offset, data.size());
    auto t = make(Value::Tensor);
    t->tensor.resize(size_t(n));
    for (int64_t k = 0; k < n; ++k) {
      if (es == 8) {
        int64_t v;
        std::memcpy(&v, data.data() + size_t(offset + k) * 8, 8);
        t->tensor[size_t(k)] = v;
      } else {
        int32_t v;
        std::memcpy(&v, data.data() + size_t(offset + k) * 4, 4);
        t->tensor[size_t(k)] = v;
      }
    }
    return t;
  }

  std::string where_;
  const std::string& d_;
  std::function<std::string(const std::string&)> record_;
  size_t p_ = 0;
  std::vector<ValuePtr> st_;
  std::map<uint32_t, ValuePtr> memo_;
};

uint32_t crc32(const std::string& s) {
  static uint32_t table[256];
  static bool init = false;
  if (!init) {
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      table[i] = c;
    }
    init = true;
  }
  uint32_t c = 0xFFFFFFFFu;
  for (unsigned char ch : s) c = table[(c ^ ch) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

void put16(std::string& o, uint16_t v) { o.append(reinterpret_cast<const char*>(&v), 2); }
void put32(std::string& o, uint32_t v) { o.append(reinterpret_cast<const char*>(&v), 4); }

}  // namespace

std::vector<ZipEntry> read_zip_directory(const std::string& path, const std::string& b) {
  MCPM_CHECK(b.size() >= 22, "{}: too short for a zip archive ({} bytes)", path, b.size());
  size_t eocd = std::string::npos;
  for (size_t i = b.size() - 22 + 1; i-- > 0 && b.size() - i <= 22 + 65535;)
    if (rd32(b, i) == 0x06054b50u) {
      eocd = i;
      break;
    }
  MCPM_CHECK(eocd != std::string::npos, "{}: not a zip archive (no end-of-directory record): torch.save files since "
             "PyTorch 1.6 are zip archives; re-save older files with a recent torch", path);
  const uint64_t n = rd16(b, eocd + 10), cd_size = rd32(b, eocd + 12), cd_off = rd32(b, eocd + 16);
  MCPM_CHECK(cd_off + cd_size <= eocd, "{}: zip central directory outside the file", path);
  std::vector<ZipEntry> out;
  uint64_t p = cd_off;
  for (uint64_t k = 0; k < n; ++k) {
    MCPM_CHECK(p + 46 <= eocd && rd32(b, p) == 0x02014b50u, "{}: broken zip central directory entry {}", path, k);
    const uint16_t method = rd16(b, p + 10), name_len = rd16(b, p + 28), extra_len = rd16(b, p + 30), cmt_len = rd16(b, p + 32);
    const uint64_t csize = rd32(b, p + 20), local = rd32(b, p + 42);
    MCPM_CHECK(p + 46 + name_len <= eocd, "{}: broken zip entry name", path);
    ZipEntry e;
    e.name = b.substr(p + 46, name_len);
    MCPM_CHECK(method == 0, "{}: zip entry '{}' is compressed (method {}); torch archives store records uncompressed", path,
               e.name, method);
    MCPM_CHECK(local + 30 <= b.size() && rd32(b, local) == 0x04034b50u, "{}: broken local header of '{}'", path, e.name);
    e.offset = local + 30 + rd16(b, local + 26) + rd16(b, local + 28);
    e.size = csize;
    MCPM_CHECK(e.offset + e.size <= b.size(), "{}: zip entry '{}' extends past the end of the file", path, e.name);
    out.push_back(e);
    p += 46 + name_len + extra_len + cmt_len;
  }
  return out;
}

std::vector<int64_t> read_torch_id_list(const std::string& path) {
  const std::string b = read_all(path);
  const std::vector<ZipEntry> entries = read_zip_directory(path, b);
  const ZipEntry* pkl = nullptr;
  for (const auto& e : entries)
    if (e.name == "data.pkl" || (e.name.size() > 9 && e.name.compare(e.name.size() - 9, 9, "/data.pkl") == 0)) pkl = &e;
  MCPM_CHECK(pkl, "{}: the zip archive has no data.pkl record (not a torch.save file)", path);
  const std::string prefix = pkl->name.substr(0, pkl->name.size() - 8);  // "<name>/"
  const std::string data = b.substr(pkl->offset, pkl->size);
  auto record = [&](const std::string& rel) {
    for (const auto& e : entries)
      if (e.name == prefix + rel) return b.substr(e.offset, e.size);
    fail("{}: record '{}{}' is missing from the archive", path, prefix, rel);
  };
  Unpickler up(path + ":" + pkl->name, data, record);
  const ValuePtr v = up.run();
  std::vector<int64_t> ids;
  if (v->kind == Value::Tensor) return v->tensor;
  MCPM_CHECK(v->kind == Value::List || v->kind == Value::Tuple, "{}: expected a list of token ids, found another object", path);
  for (size_t i = 0; i < v->items.size(); ++i) {
    MCPM_CHECK(v->items[i]->kind == Value::Int, "{}: element {} of the list is not an integer", path, i);
    ids.push_back(v->items[i]->i);
  }
  return ids;
}

void write_torch_id_list(const std::string& path, const std::vector<int64_t>& ids) {
  // Pickle protocol 2 of a list, in batches of 1000 as CPython writes it.
  std::string pk("\x80\x02]q\x00", 5);  // PROTO 2, EMPTY_LIST, BINPUT 0
  for (size_t i = 0; i < ids.size(); i += 1000) {
    pk += '(';
    for (size_t k = i; k < std::min(ids.size(), i + 1000); ++k) {
      const int64_t v = ids[k];
      if (v >= 0 && v < 256) pk += 'K', pk += char(v);
      else if (v >= 0 && v < 65536) pk += 'M', put16(pk, uint16_t(v));
      else if (v >= INT32_MIN && v <= INT32_MAX) pk += 'J', put32(pk, uint32_t(int32_t(v)));
      else fail("write_torch_id_list: id {} is out of range", v);
    }
    pk += 'e';
  }
  pk += '.';
  const std::string base = "archive/";
  const std::vector<std::pair<std::string, std::string>> recs = {
      {base + "data.pkl", pk}, {base + "byteorder", "little"}, {base + "version", "3\n"}};
  std::string out, cd;
  for (const auto& [name, body] : recs) {
    // torch aligns record data to 64 bytes with an extra field ("FB" + padding).
    const size_t header = out.size() + 30 + name.size() + 4;
    const uint16_t pad = uint16_t((64 - header % 64) % 64);
    const uint32_t crc = crc32(body);
    const uint32_t local = uint32_t(out.size());
    put32(out, 0x04034b50u), put16(out, 0), put16(out, 0), put16(out, 0), put16(out, 0), put16(out, 0);
    put32(out, crc), put32(out, uint32_t(body.size())), put32(out, uint32_t(body.size()));
    put16(out, uint16_t(name.size())), put16(out, uint16_t(4 + pad));
    out += name;
    put16(out, 0x4246), put16(out, pad);  // "FB" extra field
    out.append(pad, 'Z');
    out += body;
    put32(cd, 0x02014b50u), put16(cd, 0), put16(cd, 0), put16(cd, 0), put16(cd, 0), put16(cd, 0), put16(cd, 0);
    put32(cd, crc), put32(cd, uint32_t(body.size())), put32(cd, uint32_t(body.size()));
    put16(cd, uint16_t(name.size())), put16(cd, 0), put16(cd, 0), put16(cd, 0), put16(cd, 0), put32(cd, 0), put32(cd, local);
    cd += name;
  }
  const uint32_t cd_off = uint32_t(out.size());
  out += cd;
  put32(out, 0x06054b50u), put16(out, 0), put16(out, 0), put16(out, uint16_t(recs.size())), put16(out, uint16_t(recs.size()));
  put32(out, uint32_t(cd.size())), put32(out, cd_off), put16(out, 0);
  std::ofstream f(path, std::ios::binary);
  MCPM_CHECK(f, "{}: cannot write", path);
  f.write(out.data(), std::streamsize(out.size()));
  MCPM_CHECK(f.good(), "{}: write failed", path);
}

}  // namespace mcpm
