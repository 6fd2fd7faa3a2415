// The official OpenAI SDK for JavaScript against a real edgellmd: streaming
// chat, whole chat, completions (with logprobs), models, embeddings (the SDK
// asks for base64 and decodes it) and an error, as an app written for
// OpenAI's API would use them.
//
// Usage: node openai_sdk_test.mjs BASE_URL API_KEY MODEL
// Prints "ok: N checks" and exits 0, or names the first failed check and exits 1.
import OpenAI from "openai";
import { check, passed } from "./check.mjs";

const [baseURL, apiKey, model] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 60_000 });

const messages = [
  { role: "system", content: "You tell short stories." },
  { role: "user", content: "Once upon a time" },
];

const models = await client.models.list();
check(models.data.some((m) => m.id === model), "models.list names the model", JSON.stringify(models.data));
const one = await client.models.retrieve(model);
check(one.id === model && one.object === "model", "models.retrieve", JSON.stringify(one));

const whole = await client.chat.completions.create({ model, messages, max_tokens: 16, temperature: 0 });
const text = whole.choices[0].message.content;
check(typeof text === "string" && text.length > 0, "a whole chat completion has text", JSON.stringify(whole));
check(whole.choices[0].finish_reason === "length" || whole.choices[0].finish_reason === "stop", "finish_reason");
check(whole.usage.completion_tokens > 0 && whole.usage.total_tokens === whole.usage.prompt_tokens + whole.usage.completion_tokens,
      "usage adds up", JSON.stringify(whole.usage));

const stream = await client.chat.completions.create({
  model, messages, max_tokens: 16, temperature: 0, stream: true, stream_options: { include_usage: true },
});
let streamed = "";
let usage = null;
let finish = null;
for await (const chunk of stream) {
  if (chunk.usage) usage = chunk.usage;
  for (const choice of chunk.choices) {
    streamed += choice.delta?.content ?? "";
    if (choice.finish_reason) finish = choice.finish_reason;
  }
}
check(streamed === text, "the streamed chat equals the whole one (greedy)", JSON.stringify([streamed, text]));
check(finish === whole.choices[0].finish_reason, "the stream's finish_reason");
check(usage && usage.completion_tokens === whole.usage.completion_tokens, "the stream's usage", JSON.stringify(usage));

const completion = await client.completions.create({
  model, prompt: "Once upon a time", max_tokens: 8, temperature: 0, logprobs: 2,
});
check(completion.choices[0].text.length > 0, "a completion has text", JSON.stringify(completion));
check(completion.choices[0].logprobs.token_logprobs.length === completion.usage.completion_tokens,
      "one logprob per token", JSON.stringify(completion.choices[0].logprobs));

const embeddings = await client.embeddings.create({ model, input: ["The cat sat.", "A dog ran."] });
check(embeddings.data.length === 2, "two embeddings");
const vector = embeddings.data[0].embedding;
check(Array.isArray(vector) && vector.length > 0, "the SDK decoded the embedding", typeof vector);
const norm = Math.sqrt(vector.reduce((s, v) => s + v * v, 0));
check(Math.abs(norm - 1) < 1e-4, "unit length", String(norm));

try {
  await client.chat.completions.create({ model: "no-such-model", messages, max_tokens: 4 });
  check(false, "an unknown model is an error");
} catch (error) {
  check(error instanceof OpenAI.NotFoundError, "an unknown model is the SDK's NotFoundError", String(error));
  check(/no-such-model/.test(error.message), "the error names the model", error.message);
}
try {
  await client.chat.completions.create({ model, messages: [], max_tokens: 4 });
  check(false, "an empty conversation is an error");
} catch (error) {
  check(error instanceof OpenAI.BadRequestError && error.param === "messages", "an empty conversation is a 400 naming messages",
        String(error));
}
const wrongKey = new OpenAI({ baseURL, apiKey: "sk-wrong", maxRetries: 0 });
try {
  await wrongKey.models.list();
  check(false, "a wrong key is refused");
} catch (error) {
  check(error instanceof OpenAI.AuthenticationError, "a wrong key is the SDK's AuthenticationError", String(error));
}
console.log(`ok: ${passed()} checks`);
