// Structured output against a real edgellmd, through the official OpenAI SDK,
// every output checked by ajv (a JSON Schema validator edgellm did not write).
//
// Mode "random": a random-weight model with a real vocabulary, whose free
// output is noise. Every schema of a corpus, at several seeds and
// temperatures, sent concurrently (so the batched step runs one grammar per
// sequence), must come back as JSON the schema accepts; so must the JSON
// Schema Test Suite's schemas for the keywords edgellm enforces (the rest are
// refused with a clear error); tool calls (required, named, streamed,
// parallel or not) must name an offered function with arguments its
// parameters accept, and render back into the next turn.
// Mode "stories": stories260K, a real model, writes a story into a schema.
//
// Usage: node structured_output_test.mjs BASE_URL API_KEY MODEL random|stories
import OpenAI from "openai";
import { check, passed } from "./check.mjs";
import Ajv2020 from "ajv/dist/2020.js";
import addFormats from "ajv-formats";
import { readdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";

const [baseURL, apiKey, model, mode] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 120_000 });
const ajv = new Ajv2020({ strict: false, allErrors: true });
addFormats(ajv);

const messages = [{ role: "user", content: "Reply in JSON." }];

async function structured(schema, options) {
  const response = await client.chat.completions.create({
    model, messages, max_tokens: 400,
    response_format: { type: "json_schema", json_schema: { name: "out", schema, strict: true } },
    ...options,
  });
  return response.choices[0];
}

function validates(schema, text, what) {
  let value;
  try {
    value = JSON.parse(text);
  } catch (error) {
    check(false, `${what}: the output parses as JSON`, JSON.stringify(text));
  }
  const validate = ajv.compile(schema);
  check(validate(value), `${what}: ajv accepts the output`, `${text}\n${JSON.stringify(validate.errors)}`);
}

// Runs `tasks` (functions returning promises) with `width` in flight at once.
async function inBatches(tasks, width) {
  const results = [];
  for (let i = 0; i < tasks.length; i += width) {
    results.push(...(await Promise.all(tasks.slice(i, i + width).map((t) => t()))));
  }
  return results;
}

const tenFields = {
  type: "object",
  properties: {
    id: { type: "integer", minimum: 1, maximum: 99999 },
    name: { type: "string", maxLength: 16 },
    active: { type: "boolean" },
    score: { type: "number", minimum: 0, maximum: 100 },
    kind: { enum: ["sensor", "actuator", "gateway"] },
    zone: { type: "string", pattern: "^[A-Z]{2}-[0-9]{3}$" },
    installed: { type: "string", format: "date" },
    serial: { type: "string", format: "uuid" },
    tags: { type: "array", items: { type: "string", maxLength: 6 }, maxItems: 3 },
    parent: { anyOf: [{ type: "null" }, { type: "integer", minimum: 0, maximum: 9 }] },
  },
  required: ["id", "name", "active", "score", "kind", "zone", "installed", "serial", "tags", "parent"],
  additionalProperties: false,
};

const corpus = {
  "device command": {
    type: "object",
    properties: {
      action: { enum: ["set_temp", "fan_on", "fan_off"] },
      value: { type: "integer", minimum: 5, maximum: 30 },
    },
    required: ["action", "value"],
  },
  "ten fields": tenFields,
  "tuple and counts": {
    type: "array", prefixItems: [{ const: "reading" }, { type: "integer", minimum: -40, maximum: 85 }],
    items: { type: "boolean" }, minItems: 2, maxItems: 4,
  },
  "timestamps": {
    type: "object",
    properties: { at: { type: "string", format: "date-time" }, at_time: { type: "string", format: "time" },
                  ip: { type: "string", format: "ipv4" } },
    required: ["at", "at_time", "ip"],
  },
  "recursive tree": {
    $defs: {
      node: {
        type: "object",
        properties: { v: { type: "integer", minimum: 0, maximum: 9 },
                      kids: { type: "array", items: { $ref: "#/$defs/node" }, maxItems: 2 } },
        required: ["v"],
        additionalProperties: false,
      },
    },
    $ref: "#/$defs/node",
  },
  "tagged union": {
    oneOf: [
      { type: "object", properties: { kind: { const: "on" } }, required: ["kind"], additionalProperties: false },
      { type: "object", properties: { kind: { const: "set" }, to: { type: "integer", minimum: 0, maximum: 3 } },
        required: ["kind", "to"], additionalProperties: false },
    ],
  },
  "bounded strings": {
    type: "object",
    properties: { code: { type: "string", minLength: 2, maxLength: 4 },
                  note: { type: "string", pattern: "^(yes|no|maybe)( [0-9]{1,3})?$" } },
    required: ["code", "note"],
  },
  "numbers": {
    type: "array", items: { type: "number", minimum: -2, maximum: 3 }, minItems: 3, maxItems: 3,
  },
};

if (mode === "random") {
  // The corpus: 3 seeds x 3 temperatures each, 8 requests in flight at once.
  const tasks = [];
  for (const [name, schema] of Object.entries(corpus)) {
    for (const seed of [1, 2, 3]) {
      for (const temperature of [0, 0.8, 1.5]) {
        tasks.push(async () => ({ name, schema, seed, temperature, choice: await structured(schema, { seed, temperature }) }));
      }
    }
  }
  for (const { name, schema, seed, temperature, choice } of await inBatches(tasks, 8)) {
    const what = `${name} (seed ${seed}, temperature ${temperature})`;
    check(choice.finish_reason === "stop", `${what}: the output is complete`, JSON.stringify(choice));
    validates(schema, choice.message.content, what);
  }
  console.log(`ok: ${tasks.length} schema-constrained outputs of a random-weight model all validate`);

  // The SDK's own structured-output helper: parse() reads the reply into message.parsed.
  const parsedReply = await client.chat.completions.parse({
    model, messages, max_tokens: 400, seed: 5, temperature: 1,
    response_format: { type: "json_schema", json_schema: { name: "command", schema: corpus["device command"], strict: true } },
  });
  const command = parsedReply.choices[0].message.parsed;
  check(command !== null && ajv.compile(corpus["device command"])(command), "parse() gives a valid object",
        JSON.stringify(parsedReply.choices[0].message));

  // Free output of the same model is not JSON: the grammar did the work.
  const free = await client.chat.completions.create({ model, messages, max_tokens: 24, seed: 1 });
  let parsed = true;
  try { JSON.parse(free.choices[0].message.content); } catch { parsed = false; }
  check(!parsed, "free output of a random model is not JSON", free.choices[0].message.content);

  // json_object: any JSON object.
  const object = await client.chat.completions.create({
    model, messages, max_tokens: 400, seed: 4, temperature: 0.8, response_format: { type: "json_object" },
  });
  if (object.choices[0].finish_reason === "stop") {
    const value = JSON.parse(object.choices[0].message.content);
    check(typeof value === "object" && !Array.isArray(value) && value !== null, "json_object gives an object");
  }

  // The JSON Schema Test Suite (draft 4) for the keywords edgellm enforces.
  const require = createRequire(import.meta.url);
  const suite = path.join(path.dirname(require.resolve("json-schema-test-suite/package.json")), "tests", "draft4");
  const keywords = ["type", "properties", "required", "additionalProperties", "items", "minItems", "maxItems",
                    "enum", "anyOf", "oneOf", "allOf", "ref", "definitions", "pattern", "minLength", "maxLength",
                    "minimum", "maximum", "default"];
  const cases = [];
  for (const file of readdirSync(suite).filter((f) => keywords.includes(path.basename(f, ".json")))) {
    for (const group of JSON.parse(readFileSync(path.join(suite, file), "utf8"))) {
      cases.push({ file, description: group.description, schema: group.schema });
    }
  }
  let refused = 0, valid = 0, cut = 0, unchecked = 0;
  const suiteTasks = cases.map((c, i) => async () => {
    try {
      return { c, choice: await structured(c.schema, { seed: i + 1, temperature: 1, max_tokens: 64 }) };
    } catch (error) {
      return { c, error };
    }
  });
  for (const { c, choice, error } of await inBatches(suiteTasks, 8)) {
    const what = `suite ${c.file}: ${c.description}`;
    if (error) {
      check(error instanceof OpenAI.BadRequestError, `${what}: a refusal is a 400`, String(error));
      check(/json_schema|schema/.test(error.message), `${what}: the refusal says what in the schema`, error.message);
      ++refused;
      continue;
    }
    if (choice.finish_reason !== "stop") { ++cut; continue; }
    let validate = null;
    try { validate = ajv.compile(c.schema); } catch { ++unchecked; continue; }  // draft-4-only syntax
    let value;
    try { value = JSON.parse(choice.message.content); } catch {
      check(false, `${what}: the output parses as JSON`, choice.message.content);
    }
    check(validate(value), `${what}: ajv accepts the output`, `${choice.message.content} ${JSON.stringify(validate.errors)}`);
    ++valid;
  }
  check(valid >= cases.length / 2, "most of the suite's schemas are enforced", `${valid} of ${cases.length}`);
  console.log(`ok: JSON Schema Test Suite (draft 4, ${cases.length} schemas): ${valid} outputs validate, ` +
              `${refused} refused clearly, ${cut} cut at max_tokens, ${unchecked} in draft-4-only syntax`);

  // Tool calls.
  const tools = [
    { type: "function", function: { name: "get_weather", description: "Weather in a city",
      parameters: { type: "object", properties: { city: { type: "string", maxLength: 20 },
        unit: { enum: ["celsius", "fahrenheit"] } }, required: ["city"], additionalProperties: false } } },
    { type: "function", function: { name: "set_temp", description: "Set the thermostat",
      parameters: { type: "object", properties: { value: { type: "integer", minimum: 5, maximum: 30 } },
        required: ["value"], additionalProperties: false } } },
  ];
  const checkCalls = (calls, what, only) => {
    check(Array.isArray(calls) && calls.length >= 1, `${what}: tool_calls`, JSON.stringify(calls));
    for (const call of calls) {
      const tool = tools.find((t) => t.function.name === call.function.name);
      check(tool !== undefined, `${what}: an offered function`, call.function.name);
      if (only) check(call.function.name === only, `${what}: the named function`, call.function.name);
      check(call.type === "function" && /^call_[0-9a-f]{24}$/.test(call.id), `${what}: the call's id`, call.id);
      validates(tool.function.parameters, call.function.arguments, `${what}: ${call.function.name} arguments`);
    }
  };
  const toolMessages = [{ role: "user", content: "What is the weather in Oslo?" }];
  for (const seed of [1, 2, 3]) {
    const required = await client.chat.completions.create({
      model, messages: toolMessages, tools, tool_choice: "required", seed, temperature: 1, max_tokens: 200,
      parallel_tool_calls: false,
    });
    check(required.choices[0].finish_reason === "tool_calls", "required: finish_reason", JSON.stringify(required.choices[0]));
    checkCalls(required.choices[0].message.tool_calls, `required (seed ${seed})`);
    check(required.choices[0].message.tool_calls.length === 1, "parallel_tool_calls false: one call");
    // Parallel calls: a random model may go on calling until max_tokens; every complete call stands.
    const parallel = await client.chat.completions.create({
      model, messages: toolMessages, tools, tool_choice: "required", seed, temperature: 1, max_tokens: 200,
    });
    if (parallel.choices[0].message.tool_calls) checkCalls(parallel.choices[0].message.tool_calls, `parallel (seed ${seed})`);
    const named = await client.chat.completions.create({
      model, messages: toolMessages, tools, seed, max_tokens: 200, parallel_tool_calls: false,
      tool_choice: { type: "function", function: { name: "set_temp" } },
    });
    checkCalls(named.choices[0].message.tool_calls, `named (seed ${seed})`, "set_temp");
    check(named.choices[0].message.tool_calls.length === 1, "parallel_tool_calls false: one call");
  }
  // The SDK's parse() with strict function tools reads the arguments into parsed_arguments.
  const strictTools = tools.map((t) => ({ ...t, function: { ...t.function, strict: true } }));
  const parsedCalls = await client.chat.completions.parse({
    model, messages: toolMessages, tools: strictTools, tool_choice: "required", parallel_tool_calls: false,
    seed: 5, temperature: 1, max_tokens: 200,
  });
  const parsedCall = parsedCalls.choices[0].message.tool_calls[0].function;
  const parsedTool = tools.find((t) => t.function.name === parsedCall.name);
  check(parsedTool && ajv.compile(parsedTool.function.parameters)(parsedCall.parsed_arguments),
        "parse() gives the call's arguments as a valid object", JSON.stringify(parsedCall));
  // Streamed: the deltas, put together as SDK users do, give the same kind of calls.
  const stream = await client.chat.completions.create({
    model, messages: toolMessages, tools, tool_choice: "required", seed: 7, temperature: 0.8, max_tokens: 200, stream: true,
    parallel_tool_calls: false,
  });
  const streamed = [];
  let finish = null;
  for await (const chunk of stream) {
    for (const choice of chunk.choices) {
      if (choice.finish_reason) finish = choice.finish_reason;
      for (const delta of choice.delta?.tool_calls ?? []) {
        const call = (streamed[delta.index] ??= { id: "", type: "function", function: { name: "", arguments: "" } });
        if (delta.id) call.id = delta.id;
        if (delta.function?.name) call.function.name += delta.function.name;
        if (delta.function?.arguments) call.function.arguments += delta.function.arguments;
      }
    }
  }
  check(finish === "tool_calls", "streamed: finish_reason tool_calls", finish);
  checkCalls(streamed, "streamed");
  // The call and its result go back through the chat template for the next turn.
  const first = await client.chat.completions.create({
    model, messages: toolMessages, tools, tool_choice: "required", seed: 9, max_tokens: 200, parallel_tool_calls: false,
  });
  const call = first.choices[0].message.tool_calls[0];
  const next = await client.chat.completions.create({
    model, tools, seed: 9, max_tokens: 8,
    messages: [...toolMessages, first.choices[0].message,
               { role: "tool", tool_call_id: call.id, content: "-3 degrees and snow" }],
  });
  check(next.choices[0].message.role === "assistant", "the next turn after a tool result", JSON.stringify(next));
  // auto: free text unless the model writes the format's opening.
  const auto = await client.chat.completions.create({ model, messages: toolMessages, tools, seed: 3, max_tokens: 16 });
  check(["stop", "length", "tool_calls"].includes(auto.choices[0].finish_reason), "auto: a reply", JSON.stringify(auto));
  console.log("ok: tool calls (required, named, streamed, next turn) name offered functions with valid arguments");

  // Bad input: a clear 400 quickly, naming what is wrong.
  const refusals = [
    [{ grammar: "root ::= item" }, /rule 'item' is used but never defined/],
    [{ grammar: "root ::= a\na ::= a \"x\" | \"y\"" }, /left-recursive/],
    [{ response_format: { type: "json_schema", json_schema: { name: "x",
        schema: { type: "object", properties: { next: { $ref: "#" } }, required: ["next"] } } } }, /no finite JSON value/],
    [{ response_format: { type: "json_schema", json_schema: { name: "x",
        schema: { enum: Array.from({ length: 5000 }, (_, i) => `value-${i}`) } } } }, /at most 1024/],
    [{ response_format: { type: "json_schema", json_schema: { name: "x",
        schema: { type: "string", pattern: "(a+)+\\1" } } } }, /backreferences/],
    [{ grammar: "root ::= " + "\"x\" ".repeat(300000) }, /bytes; at most/],
  ];
  for (const [body, pattern] of refusals) {
    try {
      await client.chat.completions.create({ model, messages, max_tokens: 4, ...body });
      check(false, "a bad grammar or schema is refused", JSON.stringify(body).slice(0, 100));
    } catch (error) {
      check(error instanceof OpenAI.BadRequestError || error instanceof OpenAI.RateLimitError,
            "refused with a 4xx", String(error));
      check(pattern.test(error.message), `the refusal says why (${pattern})`, error.message.slice(0, 300));
    }
  }
  console.log("ok: bad grammars and schemas are refused with what is wrong");
} else {
  // stories260K writes a story into a schema; the story still reads as one.
  const schema = {
    type: "object",
    properties: { title: { type: "string", minLength: 3, maxLength: 30 }, story: { type: "string", minLength: 60, maxLength: 300 } },
    required: ["title", "story"],
    additionalProperties: false,
  };
  const story = await client.chat.completions.create({
    model, messages: [{ role: "user", content: "Once upon a time" }], max_tokens: 300, temperature: 0.6, seed: 5,
    response_format: { type: "json_schema", json_schema: { name: "story", schema, strict: true } },
  });
  check(story.choices[0].finish_reason === "stop", "the story is complete", JSON.stringify(story.choices[0]));
  validates(schema, story.choices[0].message.content, "story");
  const text = JSON.parse(story.choices[0].message.content).story;
  const words = text.split(/\s+/).filter((w) => /^[A-Za-z][a-z']*[.,!?"]*$/.test(w));
  const vocabulary = new Set(["the", "a", "was", "and", "to", "he", "she", "they", "it", "her", "his", "with", "in", "day"]);
  check(words.length >= 8, "the story is made of words", JSON.stringify(text));
  check(words.some((w) => vocabulary.has(w.toLowerCase().replace(/[.,!?"]/g, ""))), "the story reads as English", JSON.stringify(text));
  console.log(`ok: stories260K in a schema: ${JSON.stringify(text.slice(0, 120))}`);
}
console.log(`ok: ${passed()} checks`);
