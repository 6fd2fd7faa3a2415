// engine/torch_forward.h — the decoder forward of every architecture written
// with LibTorch ops, so the same code runs on the CPU and on a CUDA build of
// LibTorch (Jetson).
//
// It is a ForwardBackend (forward_backend.h) for a loaded LlamaModel, built
// from the weights the model's loader prepared: on the CPU its linear layers
// still multiply them in place in the mapping (weight_matrix.h), on another
// device they are float32 copies there. Its
// attention gathers the KV rows and multiplies with LibTorch, independently
// of the engine's fused pass, which makes it the reference that pass is
// tested against. Only this library links LibTorch; the header is free of it.
#ifndef EDGELLM_ENGINE_TORCH_FORWARD_H_
#define EDGELLM_ENGINE_TORCH_FORWARD_H_

#include <string>

#include "absl/status/status.h"
#include "daemon/engine/llama_model.h"

namespace edgellm::engine {

// Makes `model` run its forwards with LibTorch on `device` ("cpu", "cuda",
// "cuda:1"). InvalidArgument for a device LibTorch does not know; errors of
// loading the weights onto it.
absl::Status UseLibTorch(LlamaModel& model, const std::string& device);

}  // namespace edgellm::engine

#endif  // EDGELLM_ENGINE_TORCH_FORWARD_H_
