// Writes llama.cpp's greedy output for every model of the family
// conformance test (tests/integration/family_conformance_test.cpp): each
// architecture at F32, F16 and Q8_0, and every weight type on one of them.
// Each model is a synthetic file `edgellm make-model` writes (random weights,
// a real vocabulary from ../shared/vocab-tests); llama.cpp runs it through the
// node-llama-cpp bindings and their prebuilt CPU libraries. For each prompt
// the reference holds the ids llama.cpp tokenizes it into (BOS added where the
// model asks for it) and the next ids it picks greedily, with a float32 KV
// cache as edgellm keeps (llama.cpp's default rounds keys and values to F16).
//
// Usage: node make_llama_cpp_references.mjs EDGELLM_BINARY VOCAB_DIR WORK_DIR OUT.json
// (make-llama-cpp-references.sh installs the bindings and runs this).
import {execFileSync} from "node:child_process";
import {writeFileSync} from "node:fs";
import {getLlama} from "node-llama-cpp";

const [edgellm, vocabDir, workDir, outPath] = process.argv.slice(2);
const kTokens = 64;
const kSeed = 1;
const kPrompts = [
  "Once upon a time, in a small village by the sea,",
  "def fibonacci(n):\n    return",
  "Grüße aus München! 東京タワー 🚀 costs $1,299.99",
];

const families = [
  {shape: "test-spm", vocab: "ggml-vocab-llama-spm.gguf"},
  {shape: "test-llama3", vocab: "ggml-vocab-llama-bpe.gguf"},
  {shape: "test-qwen2", vocab: "ggml-vocab-qwen2.gguf"},
  {shape: "test-qwen3", vocab: "ggml-vocab-qwen2.gguf"},
  {shape: "test-phi3", vocab: "ggml-vocab-phi-3.gguf"},
  {shape: "test-gemma2", vocab: "ggml-vocab-llama-spm.gguf"},
  {shape: "test-gemma3", vocab: "ggml-vocab-llama-spm.gguf"},
];
const models = [];
for (const family of families) {
  for (const type of ["F32", "F16", "Q8_0"]) models.push({...family, type});
}
// Every other weight type, on rows of whole 256-value super-blocks (and F32 there, as the baseline).
for (const type of ["F32", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "IQ4_NL", "IQ4_XS"]) {
  models.push({shape: "test-k", vocab: "ggml-vocab-llama-spm.gguf", type});
}

const llama = await getLlama({gpu: false, build: "never", maxThreads: 2, logLevel: "error"});
const references = [];
for (const m of models) {
  const path = `${workDir}/${m.shape}-${m.type}.gguf`;
  execFileSync(edgellm, ["make-model", "--shape", m.shape, "--type", m.type, "--seed", String(kSeed),
                         "--vocab-from", `${vocabDir}/${m.vocab}`, "-o", path], {stdio: "ignore"});
  const model = await llama.loadModel({modelPath: path, gpuLayers: 0});
  // edgellm's KV cache holds float32 keys and values: llama.cpp is asked for the same.
  const context = await model.createContext({
    contextSize: 256, batchSize: 256, threads: 2, flashAttention: false,
    experimentalKvCacheKeyType: "F32", experimentalKvCacheValueType: "F32",
  });
  const sequence = context.getSequence();
  const prompts = [];
  for (const text of kPrompts) {
    const prompt = model.tokenize(text);
    if (model.tokens.shouldPrependBosToken && model.tokens.bos != null) prompt.unshift(model.tokens.bos);
    const greedy = [];
    for await (const token of sequence.evaluate(prompt, {temperature: 0})) {
      greedy.push(token);
      if (greedy.length >= kTokens) break;
    }
    prompts.push({text, prompt, greedy});
    await sequence.clearHistory();
  }
  references.push({...m, seed: kSeed, prompts});
  console.error(`${m.shape} ${m.type}: ${prompts.map((p) => p.greedy.length).join(", ")} tokens`);
  await context.dispose();
  await model.dispose();
}
writeFileSync(outPath, JSON.stringify({
  made_by: "tests/conformance/make-llama-cpp-references.sh (node-llama-cpp 3.22.1, llama.cpp's prebuilt CPU build)",
  models: references,
}, null, 1) + "\n");
