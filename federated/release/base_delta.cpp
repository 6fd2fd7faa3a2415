#include "federated/release/base_delta.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <memory>

#include "common/status_macros.h"
#include "common/str_cat.h"

namespace edgellm::release {
namespace {

constexpr char kMagic[] = "EDGELLM-DELTA-1\n";
constexpr size_t kMagicSize = sizeof(kMagic) - 1;
constexpr size_t kChunk = size_t{1} << 20;
constexpr uint8_t kVerbatim = 0;
constexpr uint8_t kDifference = 1;
// What a decoder accepts: windows up to 128 MiB (the encoder's levels stay far below).
constexpr int kMaxWindowLog = 27;

// A file opened for reading or writing, closed on scope exit.
class File {
 public:
  File(const std::string& path, int flags) : fd_(::open(path.c_str(), flags | O_CLOEXEC, 0644)) {}
  ~File() {
    if (fd_ >= 0) ::close(fd_);
  }
  File(const File&) = delete;
  File& operator=(const File&) = delete;
  bool ok() const { return fd_ >= 0; }
  uint64_t size() const {
    struct stat st {};
    return ::fstat(fd_, &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
  }
  bool ReadAt(uint64_t offset, char* out, size_t n) const {
    while (n > 0) {
      const ssize_t got = ::pread(fd_, out, n, static_cast<off_t>(offset));
      if (got <= 0) return false;
      out += got;
      offset += static_cast<uint64_t>(got);
      n -= static_cast<size_t>(got);
    }
    return true;
  }
  bool Write(const char* data, size_t n) {
    while (n > 0) {
      const ssize_t put = ::write(fd_, data, n);
      if (put <= 0) return false;
      data += put;
      n -= static_cast<size_t>(put);
    }
    return true;
  }
  bool Sync() { return ::fsync(fd_) == 0; }

 private:
  int fd_;
};

void PutU64(std::string& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

// The stream before compression, handed to zstd as it is made.
class Compressor {
 public:
  Compressor(File& out, int level) : out_(out), ctx_(ZSTD_createCCtx(), ZSTD_freeCCtx), buffer_(ZSTD_CStreamOutSize(), '\0') {
    ZSTD_CCtx_setParameter(ctx_.get(), ZSTD_c_compressionLevel, level);
    ZSTD_CCtx_setParameter(ctx_.get(), ZSTD_c_checksumFlag, 1);
  }
  absl::Status Add(const char* data, size_t n) { return Push(data, n, ZSTD_e_continue); }
  absl::Status Finish() { return Push(nullptr, 0, ZSTD_e_end); }

 private:
  absl::Status Push(const char* data, size_t n, ZSTD_EndDirective mode) {
    ZSTD_inBuffer in{data, n, 0};
    for (;;) {
      ZSTD_outBuffer out{buffer_.data(), buffer_.size(), 0};
      const size_t left = ZSTD_compressStream2(ctx_.get(), &out, &in, mode);
      if (ZSTD_isError(left)) return absl::InternalError(StrCat("zstd: ", ZSTD_getErrorName(left)));
      if (!out_.Write(buffer_.data(), out.pos)) return absl::InternalError("cannot write the delta");
      if (mode == ZSTD_e_end ? left == 0 : in.pos == in.size) return absl::OkStatus();
    }
  }
  File& out_;
  std::unique_ptr<ZSTD_CCtx, size_t (*)(ZSTD_CCtx*)> ctx_;
  std::string buffer_;
};

// The decompressed stream, read in order.
class Decompressor {
 public:
  explicit Decompressor(const File& in)
      : in_(in), ctx_(ZSTD_createDCtx(), ZSTD_freeDCtx), input_(ZSTD_DStreamInSize(), '\0'),
        output_(ZSTD_DStreamOutSize(), '\0') {
    ZSTD_DCtx_setParameter(ctx_.get(), ZSTD_d_windowLogMax, kMaxWindowLog);
  }
  // Exactly `n` bytes, or an error naming why not.
  absl::Status Read(char* out, size_t n) {
    while (n > 0) {
      if (out_pos_ == out_end_) EDGELLM_RETURN_IF_ERROR(Refill());
      const size_t take = std::min(n, out_end_ - out_pos_);
      std::memcpy(out, output_.data() + out_pos_, take);
      out_pos_ += take;
      out += take;
      n -= take;
    }
    return absl::OkStatus();
  }
  absl::StatusOr<uint64_t> ReadU64() {
    unsigned char bytes[8];
    EDGELLM_RETURN_IF_ERROR(Read(reinterpret_cast<char*>(bytes), 8));
    uint64_t v = 0;
    for (int i = 7; i >= 0; --i) v = (v << 8) | bytes[i];
    return v;
  }
  // True when nothing is left: the frame ended, its every byte was read, and nothing follows it.
  bool AtEnd() {
    while (out_pos_ == out_end_ && !frame_done_) {
      if (!Refill().ok()) break;
    }
    return out_pos_ == out_end_ && frame_done_ && input_pos_ == input_end_ && in_offset_ == in_.size();
  }

 private:
  absl::Status Refill() {
    for (;;) {
      if (input_pos_ == input_end_) {
        const uint64_t left = in_.size() - in_offset_;
        if (left == 0) return absl::InvalidArgumentError("the delta ends early");
        input_end_ = static_cast<size_t>(std::min<uint64_t>(left, input_.size()));
        if (!in_.ReadAt(in_offset_, input_.data(), input_end_)) return absl::InternalError("cannot read the delta");
        in_offset_ += input_end_;
        input_pos_ = 0;
      }
      ZSTD_inBuffer in{input_.data(), input_end_, input_pos_};
      ZSTD_outBuffer out{output_.data(), output_.size(), 0};
      const size_t hint = ZSTD_decompressStream(ctx_.get(), &out, &in);
      if (ZSTD_isError(hint)) return absl::InvalidArgumentError(StrCat("the delta: zstd: ", ZSTD_getErrorName(hint)));
      input_pos_ = in.pos;
      frame_done_ = hint == 0;
      out_pos_ = 0;
      out_end_ = out.pos;
      if (out_end_ > 0) return absl::OkStatus();
      if (frame_done_ && input_pos_ == input_end_ && in_offset_ == in_.size()) {
        return absl::InvalidArgumentError("the delta ends early");
      }
    }
  }
  const File& in_;
  std::unique_ptr<ZSTD_DCtx, size_t (*)(ZSTD_DCtx*)> ctx_;
  std::string input_;
  std::string output_;
  uint64_t in_offset_ = 0;
  size_t input_pos_ = 0;
  size_t input_end_ = 0;
  size_t out_pos_ = 0;
  size_t out_end_ = 0;
  bool frame_done_ = false;
};

}  // namespace

absl::Status WriteBaseDelta(const std::string& old_file, const std::string& new_file,
                            std::vector<MatchedRange> matched, const std::string& out, int level,
                            const std::function<bool()>& stopping) {
  File old_in(old_file, O_RDONLY);
  File new_in(new_file, O_RDONLY);
  if (!old_in.ok() || !new_in.ok()) return absl::NotFoundError(StrCat("cannot read ", old_file, " or ", new_file));
  const uint64_t old_size = old_in.size();
  const uint64_t new_size = new_in.size();
  std::sort(matched.begin(), matched.end(),
            [](const MatchedRange& a, const MatchedRange& b) { return a.new_offset < b.new_offset; });
  uint64_t covered = 0;
  for (const MatchedRange& m : matched) {
    if (m.new_offset < covered || m.new_offset + m.length > new_size || m.old_offset + m.length > old_size ||
        m.new_offset + m.length < m.new_offset || m.old_offset + m.length < m.old_offset) {
      return absl::InvalidArgumentError("matched ranges overlap or lie outside the files");
    }
    covered = m.new_offset + m.length;
  }
  const std::string temporary = out + ".tmp";
  absl::Status written = [&]() -> absl::Status {
    File file(temporary, O_WRONLY | O_CREAT | O_TRUNC);
    if (!file.ok()) return absl::InternalError(StrCat("cannot create ", temporary));
    Compressor zstd(file, level);
    std::string header(kMagic, kMagicSize);
    PutU64(header, old_size);
    PutU64(header, new_size);
    EDGELLM_RETURN_IF_ERROR(zstd.Add(header.data(), header.size()));
    std::string fresh(kChunk, '\0');
    std::string old(kChunk, '\0');
    const auto segment = [&](uint8_t kind, uint64_t new_offset, uint64_t length, uint64_t old_offset) -> absl::Status {
      if (length == 0) return absl::OkStatus();
      std::string head(1, static_cast<char>(kind));
      PutU64(head, length);
      if (kind == kDifference) PutU64(head, old_offset);
      EDGELLM_RETURN_IF_ERROR(zstd.Add(head.data(), head.size()));
      for (uint64_t done = 0; done < length;) {
        if (stopping && stopping()) return absl::CancelledError("stopped before the delta was made");
        const size_t n = static_cast<size_t>(std::min<uint64_t>(kChunk, length - done));
        if (!new_in.ReadAt(new_offset + done, fresh.data(), n)) return absl::InternalError("cannot read " + new_file);
        if (kind == kDifference) {
          if (!old_in.ReadAt(old_offset + done, old.data(), n)) return absl::InternalError("cannot read " + old_file);
          for (size_t i = 0; i < n; ++i) fresh[i] = static_cast<char>(static_cast<uint8_t>(fresh[i]) - static_cast<uint8_t>(old[i]));
        }
        EDGELLM_RETURN_IF_ERROR(zstd.Add(fresh.data(), n));
        done += n;
      }
      return absl::OkStatus();
    };
    uint64_t at = 0;
    for (const MatchedRange& m : matched) {
      EDGELLM_RETURN_IF_ERROR(segment(kVerbatim, at, m.new_offset - at, 0));
      EDGELLM_RETURN_IF_ERROR(segment(kDifference, m.new_offset, m.length, m.old_offset));
      at = m.new_offset + m.length;
    }
    EDGELLM_RETURN_IF_ERROR(segment(kVerbatim, at, new_size - at, 0));
    EDGELLM_RETURN_IF_ERROR(zstd.Finish());
    if (!file.Sync()) return absl::InternalError(StrCat("cannot write ", temporary));
    return absl::OkStatus();
  }();
  if (written.ok() && std::rename(temporary.c_str(), out.c_str()) != 0) {
    written = absl::InternalError(StrCat("cannot rename ", temporary));
  }
  if (!written.ok()) std::remove(temporary.c_str());
  return written;
}

absl::Status ApplyBaseDelta(const std::string& old_file, const std::string& delta, uint64_t new_size,
                            const std::string& out) {
  File old_in(old_file, O_RDONLY);
  File delta_in(delta, O_RDONLY);
  if (!old_in.ok()) return absl::NotFoundError(StrCat("cannot read ", old_file));
  if (!delta_in.ok()) return absl::NotFoundError(StrCat("cannot read ", delta));
  File file(out, O_WRONLY | O_CREAT | O_TRUNC);
  if (!file.ok()) return absl::InternalError(StrCat("cannot create ", out));
  Decompressor stream(delta_in);
  std::string magic(kMagicSize, '\0');
  EDGELLM_RETURN_IF_ERROR(stream.Read(magic.data(), magic.size()));
  if (magic != std::string_view(kMagic, kMagicSize)) return absl::InvalidArgumentError("not an edgellm base-model delta");
  EDGELLM_ASSIGN_OR_RETURN(const uint64_t old_size, stream.ReadU64());
  EDGELLM_ASSIGN_OR_RETURN(const uint64_t stated_size, stream.ReadU64());
  if (old_size != old_in.size()) {
    return absl::InvalidArgumentError(StrCat("the delta is against a file of ", old_size, " bytes; ", old_file,
                                             " has ", old_in.size()));
  }
  if (stated_size != new_size) {
    return absl::InvalidArgumentError(StrCat("the delta rebuilds ", stated_size, " bytes; the release states ", new_size));
  }
  std::string buffer(kChunk, '\0');
  std::string old(kChunk, '\0');
  uint64_t written = 0;
  while (written < new_size) {
    char kind = 0;
    EDGELLM_RETURN_IF_ERROR(stream.Read(&kind, 1));
    EDGELLM_ASSIGN_OR_RETURN(const uint64_t length, stream.ReadU64());
    uint64_t old_offset = 0;
    if (kind == kDifference) {
      EDGELLM_ASSIGN_OR_RETURN(old_offset, stream.ReadU64());
    } else if (kind != kVerbatim) {
      return absl::InvalidArgumentError(StrCat("the delta has a segment of unknown kind ", static_cast<int>(kind)));
    }
    if (length == 0 || length > new_size - written ||
        (kind == kDifference && (old_offset > old_size || length > old_size - old_offset))) {
      return absl::InvalidArgumentError(StrCat("the delta has a segment of ", length, " bytes at byte ", written,
                                               " that does not fit the files"));
    }
    for (uint64_t done = 0; done < length;) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(kChunk, length - done));
      EDGELLM_RETURN_IF_ERROR(stream.Read(buffer.data(), n));
      if (kind == kDifference) {
        if (!old_in.ReadAt(old_offset + done, old.data(), n)) return absl::InternalError("cannot read " + old_file);
        for (size_t i = 0; i < n; ++i) buffer[i] = static_cast<char>(static_cast<uint8_t>(buffer[i]) + static_cast<uint8_t>(old[i]));
      }
      if (!file.Write(buffer.data(), n)) return absl::InternalError(StrCat("cannot write ", out));
      done += n;
    }
    written += length;
  }
  if (!stream.AtEnd()) return absl::InvalidArgumentError("the delta goes on past the file it rebuilds");
  if (!file.Sync()) return absl::InternalError(StrCat("cannot write ", out));
  return absl::OkStatus();
}

}  // namespace edgellm::release
