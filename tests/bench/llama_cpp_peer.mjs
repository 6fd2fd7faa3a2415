// Times llama.cpp, through the node-llama-cpp bindings and their prebuilt
// CPU libraries, the way llama-bench does: prefill of a 512-token prompt
// (pp512) and greedy decode of 128 tokens after a 1-token prompt (tg128).
// compare-llama-cpp.sh installs the bindings and runs this on the same GGUF
// files as edgellm-bench-engine.
//
// The weights are read into memory (llama.cpp's --no-mmap), as edgellm
// reads them by default; PEER_MMAP=1 maps them from the page cache instead.
//
// Usage: [PEER_MMAP=1] node llama_cpp_peer.mjs MODEL.gguf THREADS
import {getLlama} from "node-llama-cpp";

const [modelPath, threadsArgument] = process.argv.slice(2);
const threads = Number(threadsArgument ?? 2);
const llama = await getLlama({gpu: false, build: "never", maxThreads: threads});
const model = await llama.loadModel({modelPath, gpuLayers: 0, useMmap: process.env.PEER_MMAP === "1"});
const context = await model.createContext({contextSize: 1024, batchSize: 512, threads});
const sequence = context.getSequence();
// Ordinary token ids, away from the special ones at the start of the vocabulary.
const tokens = (n, salt) => Array.from({length: n}, (_, i) => 3 + ((i * 37 + salt) % 200));
const report = (metric, value) =>
  console.log(`llama.cpp model=${modelPath.split("/").pop()} threads=${threads} metric=${metric} value=${value.toFixed(2)}`);

await sequence.evaluateWithoutGeneratingNewTokens(tokens(64, 1));  // warm-up
await sequence.clearHistory();
let start = performance.now();
await sequence.evaluateWithoutGeneratingNewTokens(tokens(512, 11));
report("prefill_tok_s", 512 / ((performance.now() - start) / 1000));
await sequence.clearHistory();

let generated = 0;
start = performance.now();
for await (const token of sequence.evaluate(tokens(1, 7), {temperature: 0})) {
  if (++generated >= 128) break;
}
report("decode_tok_s", generated / ((performance.now() - start) / 1000));
await context.dispose();
await model.dispose();
