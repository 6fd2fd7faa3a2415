// engine/quant_interleaved_avx512.h — Q4_0, Q5_0 and Q8_0 multiplies on 512-bit
// registers with sixteen weight rows side by side: each 32-bit lane holds four
// consecutive weights of its own row, so one byte dot against four activations
// broadcast to every lane advances sixteen rows' sums at once, and a block's
// scales are applied once for sixteen rows rather than once per row and lane
// (llama.cpp's repacked Q4_0 layouts do the same with eight rows).
//
// A matrix in the file's layout is interleaved, sixteen rows and a strip of
// blocks at a time, into a scratch on the stack (in L1) just before it is
// multiplied, and every activation row of the call meets it there, so a
// prefill chunk pays the interleaving once per sixteen weight rows. Where the
// model is read into memory, each matrix is instead packed once at load
// (PackInterleaved, in the bytes it had) into the form the multiply reads,
// and a decode step streams it with nothing left to shuffle.
//
// The arithmetic per lane is fixed: the block's integer sum less the
// weights' stored offset times the activations' sum (exact, in the
// integers), then acc += (weight scale · activation scale) · sum over a
// strip of 32 blocks, then y += acc. The set's one-row and four-row
// dots of these types run this same code, so a row's value does not depend
// on how many activation rows a forward carries (decode and prefill agree bit
// for bit). Included only by quant_kernels_avx512vnni.cpp, after
// quant_kernels_x86.h and quant_tiles_avx512.h.
#ifndef EDGELLM_ENGINE_QUANT_INTERLEAVED_AVX512_H_
#define EDGELLM_ENGINE_QUANT_INTERLEAVED_AVX512_H_

#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "daemon/engine/quant_kernels.h"

namespace edgellm::engine::kernels {
namespace {

inline constexpr int kInterleavedRows = 16;
static_assert(kInterleavedRows == kPackedGroupRows, "a packed group is one interleaved group");

// 16 bytes at `offset` of rows 4l + k (l = 0..3) in lane l of register k.
inline void LoadSixteenRows(const uint8_t* const rows[kInterleavedRows], uint64_t offset, __m512i z[4]) {
#pragma GCC unroll 4
  for (int k = 0; k < 4; ++k) {
    const auto at = [&](int l) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(rows[4 * l + k] + offset)); };
    z[k] = _mm512_inserti32x4(
        _mm512_inserti32x4(_mm512_inserti32x4(_mm512_castsi128_si512(at(0)), at(1), 1), at(2), 2), at(3), 3);
  }
}

// 16 bytes at `offset` of sixteen rows, transposed so that lane p of
// register g holds dword g of row p: per 128-bit lane, a 4 x 4 transpose of
// dwords across the four registers LoadSixteenRows fills.
inline void InterleaveSixteenBytes(const uint8_t* const rows[kInterleavedRows], uint64_t offset, __m512i out[4]) {
  __m512i z[4];
  LoadSixteenRows(rows, offset, z);
  const __m512i t0 = _mm512_unpacklo_epi32(z[0], z[1]), t1 = _mm512_unpackhi_epi32(z[0], z[1]);
  const __m512i t2 = _mm512_unpacklo_epi32(z[2], z[3]), t3 = _mm512_unpackhi_epi32(z[2], z[3]);
  out[0] = _mm512_unpacklo_epi64(t0, t2);
  out[1] = _mm512_unpackhi_epi64(t0, t2);
  out[2] = _mm512_unpacklo_epi64(t1, t3);
  out[3] = _mm512_unpackhi_epi64(t1, t3);
}

// Dwords 0 and 1 at `offset` of sixteen rows, lane p row p (the scale and
// what follows it; sixteen loads and four shuffles, which beat a gather).
inline void FirstTwoDwords(const uint8_t* const rows[kInterleavedRows], uint64_t offset, __m512i* first,
                           __m512i* second) {
  __m512i z[4];
  LoadSixteenRows(rows, offset, z);
  const __m512i t0 = _mm512_unpacklo_epi32(z[0], z[1]), t2 = _mm512_unpacklo_epi32(z[2], z[3]);
  *first = _mm512_unpacklo_epi64(t0, t2);
  *second = _mm512_unpackhi_epi64(t0, t2);
}

// The four bytes at `q` as one dword in every lane (a load that broadcasts,
// not a general register moved into each lane).
inline __m512i BroadcastDword(const int8_t* q) { return _mm512_broadcastd_epi32(_mm_loadu_si32(q)); }

// How a type's block of sixteen rows lies in the scratch: 16 float scales,
// then kGroups registers of interleaved bytes.
//
// Q4_0: the 16 bytes of nibbles as they are (dword g's low nibbles are
// weights 4g..4g+3, its high nibbles weights 16+4g..16+4g+3), unsigned 0..15
// once unpacked; the stored offset 8 comes off through the activations' sums.
struct InterleavedQ4_0 {
  static constexpr int kBlockBytes = 18, kGroups = 4;
  static constexpr uint32_t kFlippedBits = 0;
  static constexpr int kOffsetBits = 3;  // 8
  static void Interleave(const uint8_t* const rows[kInterleavedRows], uint64_t block_at, __m512i* out) {
    InterleaveSixteenBytes(rows, block_at + 2, out);
  }
  // The byte dot of group g's weights with the block's 32 activations q,
  // into two independent sums.
  static void Dot(__m512i group, int g, const int8_t* q, __m512i sums[2]) {
    const __m512i low_nibbles = _mm512_set1_epi8(0x0f);
    sums[0] = _mm512_dpbusd_epi32(sums[0], _mm512_and_si512(group, low_nibbles), BroadcastDword(q + 4 * g));
    sums[1] = _mm512_dpbusd_epi32(sums[1], _mm512_and_si512(_mm512_srli_epi16(group, 4), low_nibbles),
                                  BroadcastDword(q + 16 + 4 * g));
  }
};

// Q8_0: the 32 signed bytes as w + 128 (the byte dot's unsigned operand);
// the 128 comes off through the activations' sums.
struct InterleavedQ8_0 {
  static constexpr int kBlockBytes = 34, kGroups = 8;
  static constexpr uint32_t kFlippedBits = 0x80808080u;  // each byte's sign bit
  static constexpr int kOffsetBits = 7;  // 128
  static void Interleave(const uint8_t* const rows[kInterleavedRows], uint64_t block_at, __m512i* out) {
    InterleaveSixteenBytes(rows, block_at + 2, out);
    InterleaveSixteenBytes(rows, block_at + 18, out + 4);
    const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
#pragma GCC unroll 8
    for (int g = 0; g < kGroups; ++g) out[g] = _mm512_xor_si512(out[g], flip);
  }
  static void Dot(__m512i group, int g, const int8_t* q, __m512i sums[2]) {
    sums[g & 1] = _mm512_dpbusd_epi32(sums[g & 1], group, BroadcastDword(q + 4 * g));
  }
};

// Q5_0: Q4_0's nibbles (at byte 6) with bit i of the 32-bit qh (at byte 2)
// as bit 4 of weight i, unpacked here into eight groups of bytes 0..31 (as
// Q8_0 lays its groups out); the stored offset 16 comes off through the
// activations' sums. Packed, a block keeps its qh and nibbles (five
// registers, the bytes of sixteen blocks) and is unpacked on use.
struct InterleavedQ5_0 {
  static constexpr int kBlockBytes = 22, kGroups = 8;
  static constexpr uint32_t kFlippedBits = 0;
  static constexpr int kOffsetBits = 4;  // 16
  // Bits 4·half..4·half+3 of byte `byte` of each lane's qh as a mask of
  // four bytes: the byte is copied to the lane's four, and byte i tested for
  // bit 4·half + i.
  static __mmask64 FifthBits(__m512i qh, int byte, int half) {
    const __m512i lane_starts = _mm512_broadcast_i32x4(_mm_setr_epi32(0x00000000, 0x04040404, 0x08080808, 0x0c0c0c0c));
    const __m512i copies =
        _mm512_shuffle_epi8(qh, _mm512_add_epi8(lane_starts, _mm512_set1_epi8(static_cast<char>(byte))));
    return _mm512_test_epi8_mask(copies, _mm512_set1_epi32(0x08040201 << (4 * half)));
  }
  // Group g from the qh and the four registers of nibbles.
  static __m512i Group(__m512i qh, __m512i nibbles, int g) {
    const __m512i low_nibbles = _mm512_set1_epi8(0x0f);
    const __m512i bits = g < 4 ? _mm512_and_si512(nibbles, low_nibbles)
                               : _mm512_and_si512(_mm512_srli_epi16(nibbles, 4), low_nibbles);
    const int k = g % 4;
    return _mm512_mask_add_epi8(bits, FifthBits(qh, (g < 4 ? 0 : 2) + k / 2, k % 2), bits, _mm512_set1_epi8(0x10));
  }
  // The qh of sixteen rows, lane p row p's (bytes 2-5: the high half of dword 0 and the low half of dword 1).
  static __m512i Qh(const uint8_t* const rows[kInterleavedRows], uint64_t block_at) {
    __m512i first, second;
    FirstTwoDwords(rows, block_at, &first, &second);
    return _mm512_or_si512(_mm512_srli_epi32(first, 16), _mm512_slli_epi32(second, 16));
  }
  static void Interleave(const uint8_t* const rows[kInterleavedRows], uint64_t block_at, __m512i* out) {
    __m512i nibbles[4];
    InterleaveSixteenBytes(rows, block_at + 6, nibbles);
    const __m512i qh = Qh(rows, block_at);
#pragma GCC unroll 8
    for (int g = 0; g < kGroups; ++g) out[g] = Group(qh, nibbles[g % 4], g);
  }
  static void Dot(__m512i group, int g, const int8_t* q, __m512i sums[2]) { InterleavedQ8_0::Dot(group, g, q, sums); }
};

// What a packed block holds after its sixteen F16 scales: by default the
// groups as Interleave makes them; a layout whose groups would not fit in
// the bytes of sixteen blocks packs fewer registers and makes each group
// from them on use.
template <typename Layout>
struct PackedForm {
  static constexpr int kRegisters = Layout::kGroups;
  static void Pack(const uint8_t* const rows[kInterleavedRows], uint64_t block_at, __m512i* out) {
    Layout::Interleave(rows, block_at, out);
  }
  static __m512i Group(const uint8_t* registers, int g) { return _mm512_loadu_si512(registers + 64 * g); }
};
// Q5_0 packed: the qh register, then the four of nibbles.
template <>
struct PackedForm<InterleavedQ5_0> {
  static constexpr int kRegisters = 5;
  static void Pack(const uint8_t* const rows[kInterleavedRows], uint64_t block_at, __m512i* out) {
    out[0] = InterleavedQ5_0::Qh(rows, block_at);
    InterleaveSixteenBytes(rows, block_at + 6, out + 1);
  }
  static __m512i Group(const uint8_t* registers, int g) {
    return InterleavedQ5_0::Group(_mm512_loadu_si512(registers), _mm512_loadu_si512(registers + 64 * (1 + g % 4)), g);
  }
};

// A block in the scratch: its scales, then its groups, a register each.
template <typename Layout>
inline constexpr int kScratchRegisters = 1 + Layout::kGroups;
struct alignas(64) ScratchRegister {
  __m512i bits;
};

// Blocks [first, first + count) of sixteen weight rows into `scratch`;
// `next` is where the sixteen rows after them start.
template <typename Layout>
void InterleaveRows(const uint8_t* const rows[kInterleavedRows], int64_t first, int64_t count,
                    ScratchRegister* scratch, const uint8_t* next) {
  for (int64_t b = first; b < first + count; ++b, scratch += kScratchRegisters<Layout>) {
    const uint64_t block_at = static_cast<uint64_t>(b) * Layout::kBlockBytes;
    // Sixteen streams are more than the hardware prefetcher follows: while
    // these rows are read across, the next sixteen (contiguous) are asked
    // for in order, a block's share of them per block.
    for (uint64_t line = 0; line < kInterleavedRows * Layout::kBlockBytes; line += 64) {
      _mm_prefetch(reinterpret_cast<const char*>(next) + kInterleavedRows * block_at + line, _MM_HINT_T0);
    }
    // Each row's fp16 scale is the low half of the dword at its block's start.
    __m512i scale_words, unused;
    FirstTwoDwords(rows, block_at, &scale_words, &unused);
    scratch[0].bits = _mm512_castps_si512(_mm512_cvtph_ps(_mm512_cvtepi32_epi16(scale_words)));
    __m512i groups[Layout::kGroups];
    Layout::Interleave(rows, block_at, groups);
#pragma GCC unroll 8
    for (int g = 0; g < Layout::kGroups; ++g) scratch[1 + g].bits = groups[g];
  }
}

// Where DotInterleaved reads a block's sixteen scales and its groups: the
// scratch a strip was interleaved into just before, or a matrix packed into
// that form at load (PackInterleaved), whose scales stay F16 so that a
// packed block takes exactly the bytes of the sixteen blocks it replaces.
template <typename Layout>
struct FromScratch {
  const ScratchRegister* at;
  void Prefetch(int64_t) const {}  // already in L1
  __m512 Scales(int64_t b) const { return _mm512_castsi512_ps(at[b * kScratchRegisters<Layout>].bits); }
  __m512i Group(int64_t b, int g) const { return at[b * kScratchRegisters<Layout> + 1 + g].bits; }
};

// Blocks ahead of the one being multiplied that a packed matrix's multiply
// of several activation rows asks memory for: sixteen rows (a batch of
// decode steps) read each block only twice, too little work to hide a load
// from memory behind. Sixteen blocks (4.5 KiB of Q4_0) ahead rather than
// eight: tinyllama-1.1b Q4_0, two threads, four sequences decoding together
// 207 -> 231 tok/s, sixteen 330 -> 344, a prompt 417 -> 425 (ABBA); 32 ahead
// was no better. (One row streams, and the hardware's prefetcher keeps up:
// asking there made decode slower.)
inline constexpr int64_t kPrefetchAheadBlocks = 16;

// A packed block: sixteen F16 scales, then its registers (PackedForm).
template <typename Layout>
inline constexpr int64_t kPackedBlockBytes = 32 + 64 * PackedForm<Layout>::kRegisters;
// Whether a type packs in place: its packed block is sixteen of its blocks' bytes.
template <typename Layout>
inline constexpr bool kPacksInPlace = kPackedBlockBytes<Layout> == kInterleavedRows * Layout::kBlockBytes;

template <typename Layout, bool kPrefetch = false>
struct FromPacked {
  const uint8_t* at;
  // Asks for block b + kPrefetchAheadBlocks (in the same stream: the blocks of a
  // group lie in order, and the next group follows the last).
  void Prefetch(int64_t b) const {
    if constexpr (kPrefetch) {
      const char* ahead = reinterpret_cast<const char*>(at + (b + kPrefetchAheadBlocks) * kPackedBlockBytes<Layout>);
      for (int64_t line = 0; line < kPackedBlockBytes<Layout>; line += 64) _mm_prefetch(ahead + line, _MM_HINT_T0);
    }
  }
  __m512 Scales(int64_t b) const {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(at + b * kPackedBlockBytes<Layout>)));
  }
  __m512i Group(int64_t b, int g) const { return PackedForm<Layout>::Group(at + b * kPackedBlockBytes<Layout> + 32, g); }
};

// The sixteen interleaved rows `source` holds against activation rows
// a[0..kA), into lane p of out[j] (weight row p, activation row j). The
// scales are the same floats from either source, so a packed matrix gives
// bit for bit what interleaving the file's rows gives. Each block's integer
// dot starts from −offset · Σq of its activations, so the weights' stored
// offset comes off exactly, in the integers, for a shift per block and
// activation row (a pass of float multiply-adds over the blocks did it
// before: sixteen rows through a packed Q4_0 matrix 20% faster without it).
template <typename Layout, int kA, typename Source>
void DotInterleaved(const Source& source, int64_t blocks, const ActivationBlock* const a[kA], __m512 out[kA]) {
  __m512 acc[kA];
#pragma GCC unroll 8
  for (int j = 0; j < kA; ++j) acc[j] = _mm512_setzero_ps();
  for (int64_t b = 0; b < blocks; ++b) {
    source.Prefetch(b);
    __m512i sums[kA][2];
#pragma GCC unroll 8
    for (int j = 0; j < kA; ++j) {
      // Negated as unsigned: a NaN activation's block may hold any sum.
      const auto negated_sum = static_cast<int32_t>(0u - static_cast<uint32_t>(a[j][b].sum_q));
      sums[j][0] = _mm512_slli_epi32(_mm512_set1_epi32(negated_sum), Layout::kOffsetBits);
      sums[j][1] = _mm512_setzero_si512();
    }
#pragma GCC unroll 8
    for (int g = 0; g < Layout::kGroups; ++g) {
      const __m512i group = source.Group(b, g);
#pragma GCC unroll 8
      for (int j = 0; j < kA; ++j) {
        Layout::Dot(group, g, a[j][b].q, sums[j]);
      }
    }
    const __m512 scales = source.Scales(b);
#pragma GCC unroll 8
    for (int j = 0; j < kA; ++j) {
      const __m512 sum = LanesToFloat(_mm512_add_epi32(sums[j][0], sums[j][1]));
      acc[j] = _mm512_fmadd_ps(_mm512_mul_ps(scales, _mm512_set1_ps(a[j][b].d)), sum, acc[j]);
    }
  }
#pragma GCC unroll 8
  for (int j = 0; j < kA; ++j) out[j] = acc[j];
}

// Calls emit<kA>(r) for the activation rows [0, rows), kMost at a time
// (8 or 4), then the rest.
template <int kMost = 4, typename Emit>
void ForActivationRows(int64_t rows, const Emit& emit) {
  int64_t r = 0;
  if constexpr (kMost >= 8) {
    for (; r + 8 <= rows; r += 8) emit.template operator()<8>(r);
  }
  for (; r + 4 <= rows; r += 4) emit.template operator()<4>(r);
  switch (rows - r) {
    case 3: emit.template operator()<3>(r); break;
    case 2: emit.template operator()<2>(r); break;
    case 1: emit.template operator()<1>(r); break;
    default: break;
  }
}

// Blocks interleaved at a time: a strip of sixteen rows (18 KiB for Q8_0)
// stays in L1 while the activation rows pass it, and lives on the stack, so
// no thread ever allocates for it.
inline constexpr int64_t kStripBlocks = 32;

// y[r·y_stride + o] for `out_rows` weight rows (each `row_bytes` after the
// last) and `rows` activation rows (each `a_stride` blocks after the last):
// sixteen weight rows at a time (a group past the last row repeats it and
// keeps only the real rows), a strip of their blocks at a time, eight
// activation rows at a time against it. Each strip's sums are added to y.
template <typename Layout>
void MultiplyInterleavedRows(const uint8_t* weights, uint64_t row_bytes, int64_t out_rows, const ActivationBlock* a,
                             int64_t a_stride, int64_t rows, int64_t blocks, float* y, int64_t y_stride) {
  ScratchRegister strip[kStripBlocks * kScratchRegisters<Layout>];
  for (int64_t o = 0; o < out_rows; o += kInterleavedRows) {
    const uint8_t* group[kInterleavedRows];
    for (int p = 0; p < kInterleavedRows; ++p) {
      group[p] = weights + static_cast<uint64_t>(std::min<int64_t>(o + p, out_rows - 1)) * row_bytes;
    }
    const int64_t real = std::min<int64_t>(kInterleavedRows, out_rows - o);
    const __mmask16 keep = static_cast<__mmask16>((1u << real) - 1);
    for (int64_t first = 0; first < blocks; first += kStripBlocks) {
      const int64_t count = std::min(kStripBlocks, blocks - first);
      InterleaveRows<Layout>(group, first, count, strip, weights + (o + kInterleavedRows) * row_bytes);
      const auto emit = [&]<int kA>(int64_t r) {
        const ActivationBlock* rows_a[kA];
        for (int j = 0; j < kA; ++j) rows_a[j] = a + (r + j) * a_stride + first;
        __m512 out[kA];
        DotInterleaved<Layout, kA>(FromScratch<Layout>{strip}, count, rows_a, out);
        for (int j = 0; j < kA; ++j) {
          float* at = y + (r + j) * y_stride + o;
          _mm512_mask_storeu_ps(at, keep, first == 0 ? out[j] : _mm512_add_ps(_mm512_maskz_loadu_ps(keep, at), out[j]));
        }
      };
      ForActivationRows<8>(rows, emit);
    }
  }
}

// MultiplyInterleavedRows on a matrix packed by PackInterleaved (whole
// groups of sixteen rows): each group's blocks are read in order from one
// stream, with nothing left to interleave.
template <typename Layout>
void MultiplyPacked(const uint8_t* weights, uint64_t row_bytes, int64_t out_rows, const ActivationBlock* a,
                    int64_t rows, int64_t blocks, float* y, int64_t y_stride) {
  // A form that makes its groups on use makes them once per strip into the
  // scratch when more than one pass of activation rows will read them.
  constexpr bool kMakesGroups = PackedForm<Layout>::kRegisters != Layout::kGroups;
  ScratchRegister strip[kMakesGroups ? kStripBlocks * kScratchRegisters<Layout> : 1];
  const bool groups_in_scratch = kMakesGroups && rows > 4;
  for (int64_t o = 0; o < out_rows; o += kInterleavedRows) {
    const uint8_t* packed = weights + static_cast<uint64_t>(o) * row_bytes;
    for (int64_t first = 0; first < blocks; first += kStripBlocks) {
      const int64_t count = std::min(kStripBlocks, blocks - first);
      const FromPacked<Layout> source{packed + first * kPackedBlockBytes<Layout>};
      if (groups_in_scratch) {
        for (int64_t b = 0; b < count; ++b) {
          ScratchRegister* block = strip + b * kScratchRegisters<Layout>;
          block[0].bits = _mm512_castps_si512(source.Scales(b));
          for (int g = 0; g < Layout::kGroups; ++g) block[1 + g].bits = source.Group(b, g);
        }
      }
      const auto emit = [&]<int kA>(int64_t r) {
        const ActivationBlock* rows_a[kA];
        for (int j = 0; j < kA; ++j) rows_a[j] = a + (r + j) * blocks + first;
        __m512 out[kA];
        if (groups_in_scratch) {
          DotInterleaved<Layout, kA>(FromScratch<Layout>{strip}, count, rows_a, out);
        } else {
          if (rows > 1) {
            DotInterleaved<Layout, kA>(FromPacked<Layout, true>{source.at}, count, rows_a, out);
          } else {
            DotInterleaved<Layout, kA>(source, count, rows_a, out);
          }
        }
        for (int j = 0; j < kA; ++j) {
          float* at = y + (r + j) * y_stride + o;
          _mm512_storeu_ps(at, first == 0 ? out[j] : _mm512_add_ps(_mm512_loadu_ps(at), out[j]));
        }
      };
      ForActivationRows<8>(rows, emit);
    }
  }
}

// Rewrites `out_rows` rows (a multiple of sixteen, each `row_bytes` after the
// last) in place into the form MultiplyPacked reads: per group of sixteen
// rows, per block, the sixteen F16 scales and then its PackedForm registers.
template <typename Layout>
void PackInterleaved(uint8_t* weights, uint64_t row_bytes, int64_t out_rows, int64_t blocks) {
  std::vector<uint8_t> packed(kInterleavedRows * row_bytes);
  for (int64_t o = 0; o + kInterleavedRows <= out_rows; o += kInterleavedRows) {
    uint8_t* group_start = weights + static_cast<uint64_t>(o) * row_bytes;
    const uint8_t* group[kInterleavedRows];
    for (int p = 0; p < kInterleavedRows; ++p) group[p] = group_start + p * row_bytes;
    uint8_t* to = packed.data();
    for (int64_t b = 0; b < blocks; ++b, to += kPackedBlockBytes<Layout>) {
      const uint64_t block_at = static_cast<uint64_t>(b) * Layout::kBlockBytes;
      __m512i scale_words, unused;
      FirstTwoDwords(group, block_at, &scale_words, &unused);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(to), _mm512_cvtepi32_epi16(scale_words));
      __m512i registers[PackedForm<Layout>::kRegisters];
      PackedForm<Layout>::Pack(group, block_at, registers);
      for (int g = 0; g < PackedForm<Layout>::kRegisters; ++g) _mm512_storeu_si512(to + 32 + 64 * g, registers[g]);
    }
    std::memcpy(group_start, packed.data(), packed.size());
  }
}

// Row p of a packed group back in the file's layout: in every packed form,
// register k holds dword k of the bytes after each row's scale in lane p,
// with the bits Interleave flipped (kFlippedBits) to flip back.
template <typename Layout>
void UnpackInterleavedRow(const uint8_t* group, int p, int64_t blocks, uint8_t* out) {
  for (int64_t b = 0; b < blocks; ++b) {
    const uint8_t* packed = group + b * kPackedBlockBytes<Layout>;
    uint8_t* block = out + b * Layout::kBlockBytes;
    std::memcpy(block, packed + 2 * p, 2);
    for (int k = 0; k < PackedForm<Layout>::kRegisters; ++k) {
      uint32_t dword;
      std::memcpy(&dword, packed + 32 + 64 * k + 4 * p, 4);
      dword ^= Layout::kFlippedBits;
      std::memcpy(block + 2 + 4 * k, &dword, 4);
    }
  }
}

template <typename Layout>
void MultiplyInterleaved(const uint8_t* weights, uint64_t row_bytes, int64_t out_rows, const ActivationBlock* a,
                         int64_t rows, int64_t blocks, float* y, int64_t y_stride) {
  MultiplyInterleavedRows<Layout>(weights, row_bytes, out_rows, a, blocks, rows, blocks, y, y_stride);
}

// One weight row against one activation row or four: a group of sixteen
// copies of the row, so each lane computes what the multiply computes.
template <typename Layout>
float DotInterleavedOne(const uint8_t* w, const ActivationBlock* a, int64_t blocks) {
  float y;
  MultiplyInterleavedRows<Layout>(w, 0, 1, a, blocks, 1, blocks, &y, 1);
  return y;
}
template <typename Layout>
void DotInterleavedFour(const uint8_t* w, const ActivationBlock* a, int64_t stride, int64_t blocks, float out[4]) {
  MultiplyInterleavedRows<Layout>(w, 0, 1, a, stride, 4, blocks, out, 1);
}

template <typename Layout>
void SetInterleaved(KernelSet& set, GgmlType type) {
  set.Set(type, DotInterleavedOne<Layout>, DotInterleavedFour<Layout>);
  set.multiply[static_cast<size_t>(type)] = MultiplyInterleaved<Layout>;
  set.multiply_interleaved[static_cast<size_t>(type)] = true;
  if constexpr (kPacksInPlace<Layout>) {
    set.multiply_packed[static_cast<size_t>(type)] = MultiplyPacked<Layout>;
    set.pack[static_cast<size_t>(type)] = PackInterleaved<Layout>;
    set.unpack_row[static_cast<size_t>(type)] = UnpackInterleavedRow<Layout>;
  }
}

// The AVX-512 set's interleaved types: every row count, decode included.
void AddAvx512Interleaved(KernelSet& set) {
  SetInterleaved<InterleavedQ4_0>(set, GgmlType::kQ4_0);
  SetInterleaved<InterleavedQ5_0>(set, GgmlType::kQ5_0);
  SetInterleaved<InterleavedQ8_0>(set, GgmlType::kQ8_0);
}

}  // namespace
}  // namespace edgellm::engine::kernels

#endif  // EDGELLM_ENGINE_QUANT_INTERLEAVED_AVX512_H_
