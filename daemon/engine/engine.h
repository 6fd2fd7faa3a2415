// engine/engine.h — the edgellm inference engine: GGUF models on the CPU.
//
// What it is: a reader and writer for GGUF files (memory-mapped, every byte
// validated), the GGML tensor types and their quantization, the llama
// SentencePiece and gpt2 byte-level BPE tokenizers, the Llama model and its
// fused CPU forward over weights read in place, a KV cache in shared blocks,
// a sampler chain, the generation loop and speculative drafting. It also
// writes synthetic models at real shapes for benchmarks.
// What it is not: a server. It knows nothing of gRPC, HTTP, metrics or
// configuration files; `serve/` and `train/` build on it, never the reverse.
// The library `edgellm::engine` does not link LibTorch; the LibTorch forward
// (torch_forward.h, for other devices) is the separate `edgellm::engine_torch`.
#ifndef EDGELLM_ENGINE_ENGINE_H_
#define EDGELLM_ENGINE_ENGINE_H_

#include "daemon/engine/draft_length.h"
#include "daemon/engine/generator.h"
#include "daemon/engine/gguf.h"
#include "daemon/engine/gguf_reader.h"
#include "daemon/engine/gguf_writer.h"
#include "daemon/engine/kv_block_pool.h"
#include "daemon/engine/kv_cache.h"
#include "daemon/engine/llama_config.h"
#include "daemon/engine/llama_model.h"
#include "daemon/engine/lora_adapter.h"
#include "daemon/engine/model_rewrite.h"
#include "daemon/engine/quant_types.h"
#include "daemon/engine/safetensors.h"
#include "daemon/engine/sampler.h"
#include "daemon/engine/synthetic_model.h"
#include "daemon/engine/tokenizer.h"

#endif  // EDGELLM_ENGINE_ENGINE_H_
