// Writes the seed corpus of the fuzz targets into the directory given: small
// but complete GGUF files (a llama and a gpt2 tokenizer, tensors of several
// types), a few texts, a safetensors file shaped like a PEFT adapter,
// federated updates in each encoding, and a small model of each architecture.
#include <filesystem>
#include <fstream>
#include <iostream>

#include "daemon/engine/gguf_writer.h"
#include "daemon/engine/safetensors.h"
#include "daemon/engine/synthetic_model.h"
#include "daemon/engine/synthetic_vocab.h"
#include "federated/protocol/update_codec.h"

namespace edgellm::engine {
namespace {

int Fail(const absl::Status& s) {
  std::cerr << "make-fuzz-seeds: " << s.message() << "\n";
  return 1;
}

absl::Status WriteModel(const std::filesystem::path& path, const Vocab& v) {
  GgufWriter w;
  w.Set("general.architecture", GgufValue::String("llama"));
  w.Set("llama.block_count", GgufValue::Uint32(1));
  w.Set("llama.embedding_length", GgufValue::Uint32(32));
  w.Set("llama.attention.head_count", GgufValue::Uint32(2));
  w.Set("llama.feed_forward_length", GgufValue::Uint32(32));
  v.WriteTo(w);
  w.Set("nested", GgufValue::NestedArray(GgufType::kArray, {GgufValue::Int32Array(std::vector<int32_t>{1})}));
  std::vector<float> weights(32 * 32, 0.5f);
  for (GgmlType type : {GgmlType::kF32, GgmlType::kF16, GgmlType::kQ8_0, GgmlType::kQ4_0}) {
    const std::string name = std::string("t.") + std::string(TraitsOf(type).name);
    auto bytes = std::make_shared<std::vector<uint8_t>>(RowBytes(type, weights.size()));
    if (absl::Status s = Quantize(type, weights, absl::MakeSpan(*bytes)); !s.ok()) return s;
    if (absl::Status s = w.AddTensor(name, type, {32, 32}, [bytes](absl::Span<uint8_t> out) {
          std::copy(bytes->begin(), bytes->end(), out.begin());
          return absl::OkStatus();
        });
        !s.ok()) {
      return s;
    }
  }
  return w.Write(path.string());
}

int Run(const std::filesystem::path& dir) {
  std::filesystem::create_directories(dir / "gguf");
  std::filesystem::create_directories(dir / "text");
  auto spm = MakeSpmVocab(300, 1);
  auto bpe = MakeBpeVocab(300, 1);
  if (!spm.ok()) return Fail(spm.status());
  if (!bpe.ok()) return Fail(bpe.status());
  if (absl::Status s = WriteModel(dir / "gguf" / "spm.gguf", *spm); !s.ok()) return Fail(s);
  if (absl::Status s = WriteModel(dir / "gguf" / "bpe.gguf", *bpe); !s.ok()) return Fail(s);
  const char* texts[] = {"Once upon a time", " two  spaces\n\nnewlines\t", "caf\xc3\xa9 \xf0\x9f\x98\x80 123,456",
                         "<s>special</s><|endoftext|>", "I'm here, don't"};
  std::filesystem::create_directories(dir / "safetensors");
  const std::vector<float> a(4 * 32, 0.25f), b(32 * 4, -0.5f);
  SafetensorsWriter adapter;
  adapter.SetMetadata("format", "pt");
  if (absl::Status s = adapter.Add("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight", {4, 32}, a);
      !s.ok()) {
    return Fail(s);
  }
  if (absl::Status s = adapter.Add("base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight", {32, 4}, b);
      !s.ok()) {
    return Fail(s);
  }
  if (absl::Status s = adapter.Write((dir / "safetensors" / "adapter_model.safetensors").string()); !s.ok()) {
    return Fail(s);
  }
  std::filesystem::create_directories(dir / "update");
  const federated::TensorSet delta = {{"layers.0.q_proj.lora_B", 32, 4, b}, {"layers.0.q_proj.lora_A", 4, 33, std::vector<float>(132, 0.1f)}};
  for (auto e : {federated::TensorEncoding::kF32, federated::TensorEncoding::kF16, federated::TensorEncoding::kInt8}) {
    std::ofstream(dir / "update" / std::string(federated::TensorEncodingName(e)), std::ios::binary)
        << federated::EncodeTensors({"model", 3, 2, delta}, e);
  }
  int i = 0;
  for (const char* t : texts) std::ofstream(dir / "text" / ("seed" + std::to_string(i++))) << t;
  // A one-layer model of each architecture, at two weight types.
  std::filesystem::create_directories(dir / "models");
  for (const char* name : {"test-spm", "test-llama3", "test-qwen2", "test-qwen3", "test-phi3", "test-gemma2", "test-gemma3"}) {
    ModelShape shape = *FindShape(name);
    shape.n_layer = 1;
    shape.n_vocab = 300;
    for (GgmlType type : {GgmlType::kF16, GgmlType::kQ8_0}) {
      const std::string file = std::string(name) + "-" + std::string(TraitsOf(type).name) + ".gguf";
      if (absl::Status s = WriteSyntheticModel({shape, type, 1, ""}, (dir / "models" / file).string()); !s.ok()) {
        return Fail(s);
      }
    }
  }
  return 0;
}

}  // namespace
}  // namespace edgellm::engine

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: make-fuzz-seeds DIR\n";
    return 2;
  }
  return edgellm::engine::Run(argv[1]);
}
