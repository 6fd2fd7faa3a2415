#!/usr/bin/env python3
"""A client in another language, built from the .proto files alone.

Generates Python stubs for edgellm.v1 and grpc.health.v1 with protoc and
grpc_python_plugin, starts a real edgellmd on a temporary unix socket, and
checks health, a greedy stream against llama.cpp's reference tokens,
ListModels, a Chat through the chat template (equal to Generate on the prompt
Python's Jinja2 renders), Embed, structured output (a JSON Schema, a grammar,
tool calls), INVALID_ARGUMENT refusals, and a clean SIGTERM exit.
Exit code 0 when every check passes.
"""
import argparse
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time


def generate_stubs(proto_dir, out_dir):
    """Messages and stubs for edgellm.v1; messages only for grpc.health.v1,
    whose package would shadow the installed grpc module."""
    plugin = shutil.which("grpc_python_plugin")
    subprocess.run(["protoc", f"-I{proto_dir}", f"--python_out={out_dir}", f"--grpc_out={out_dir}",
                    f"--plugin=protoc-gen-grpc={plugin}", "edgellm/v1/inference.proto"], check=True)
    subprocess.run(["protoc", f"-I{proto_dir}", f"--python_out={out_dir}", "grpc/health/v1/health.proto"], check=True)
    sys.path.insert(0, out_dir)


def load_health_messages(out_dir):
    path = os.path.join(out_dir, "grpc", "health", "v1", "health_pb2.py")
    spec = importlib.util.spec_from_file_location("health_pb2", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--edgellmd", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--reference", required=True)
    parser.add_argument("--proto-dir", required=True)
    parser.add_argument("--chat-template", required=True)
    args = parser.parse_args()

    for needed in (args.model, args.chat_template):
        if not os.path.exists(needed):
            if os.environ.get("CI"):
                print(f"missing shared file {needed}")
                return 1
            print(f"skipping: missing shared file {needed}")
            return 0

    work = tempfile.mkdtemp(prefix="edgellm-python-client-")
    generate_stubs(args.proto_dir, work)
    import grpc
    from edgellm.v1 import inference_pb2, inference_pb2_grpc
    health_pb2 = load_health_messages(work)

    def health_check(channel):
        check_method = channel.unary_unary("/grpc.health.v1.Health/Check",
                                           request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
                                           response_deserializer=health_pb2.HealthCheckResponse.FromString)
        return check_method(health_pb2.HealthCheckRequest(), timeout=2).status

    socket = os.path.join(work, "edgellmd.sock")
    daemon = subprocess.Popen([args.edgellmd, "--model", args.model, "--listen", f"unix:{socket}", "--threads", "1",
                               "--chat-template-file", args.chat_template])
    failures = []
    passed = []

    def check(condition, what):
        print(("ok   " if condition else "FAIL ") + what)
        (passed if condition else failures).append(what)

    try:
        status = None
        for _ in range(600):
            try:
                with grpc.insecure_channel(f"unix:{socket}") as probe:
                    status = health_check(probe)
                if status == health_pb2.HealthCheckResponse.SERVING:
                    break
            except grpc.RpcError:
                pass
            time.sleep(0.1)
        check(status == health_pb2.HealthCheckResponse.SERVING, "health reports SERVING")

        with open(args.reference) as f:
            reference = json.load(f)["references"][0]
        with grpc.insecure_channel(f"unix:{socket}") as channel:
            stub = inference_pb2_grpc.InferenceStub(channel)
            request = inference_pb2.GenerateRequest(prompt=reference["prompt"], max_tokens=reference["n_predict"],
                                                    sampling=inference_pb2.SamplingParams(temperature=0.0))
            ids, text, last = [], "", None
            for response in stub.Generate(request, timeout=60):
                ids.extend(response.token_ids)
                text += response.text
                last = response
            check(ids == reference["generated_token_ids"], "greedy stream gives llama.cpp's tokens")
            check(text == reference["generated_text"], "greedy stream gives llama.cpp's text")
            check(last is not None and last.finish_reason == inference_pb2.FINISH_REASON_LENGTH,
                  "the last response says FINISH_REASON_LENGTH")

            models = stub.ListModels(inference_pb2.ListModelsRequest(), timeout=10).models
            check(len(models) == 1 and models[0].architecture == "llama", "ListModels names the llama model")

            check(models[0].has_chat_template, "ListModels says the model has a chat template")

            # Chat: the messages through the chat template, then exactly Generate on that prompt.
            import jinja2
            messages = [{"role": "system", "content": "You tell stories."}, {"role": "user", "content": "Once upon a time"}]
            with open(args.chat_template, encoding="utf-8") as f:
                environment = jinja2.Environment(trim_blocks=True, lstrip_blocks=True)
                prompt = environment.from_string(f.read()).render(messages=messages, add_generation_prompt=True,
                                                                  bos_token="<s>", eos_token="</s>")
            chat = inference_pb2.ChatRequest(
                messages=[inference_pb2.ChatMessage(role=m["role"], content=m["content"]) for m in messages],
                max_tokens=12, sampling=inference_pb2.SamplingParams(temperature=0.0))
            chat_ids = [i for r in stub.Chat(chat, timeout=60) for i in r.token_ids]
            generate = inference_pb2.GenerateRequest(prompt=prompt, max_tokens=12,
                                                     sampling=inference_pb2.SamplingParams(temperature=0.0))
            generate_ids = [i for r in stub.Generate(generate, timeout=60) for i in r.token_ids]
            check(len(chat_ids) == 12 and chat_ids == generate_ids,
                  "Chat gives Generate's tokens on the prompt Jinja2 renders")

            embedded = stub.Embed(inference_pb2.EmbedRequest(inputs=["The cat sat.", "A dog ran."]), timeout=60)
            norms = [sum(v * v for v in e.values) ** 0.5 for e in embedded.embeddings]
            check(len(norms) == 2 and all(abs(n - 1) < 1e-4 for n in norms)
                  and len(embedded.embeddings[0].values) == models[0].embedding_length,
                  "Embed gives one unit-length embedding per input")

            # Structured output over gRPC: a JSON Schema on Generate, a GBNF grammar on Chat, tool calls.
            schema = {"type": "object", "properties": {"hero": {"type": "string", "maxLength": 20},
                                                       "age": {"type": "integer", "minimum": 1, "maximum": 12}},
                      "required": ["hero", "age"]}
            for seed in (1, 2, 3):
                text = "".join(r.text for r in stub.Generate(inference_pb2.GenerateRequest(
                    prompt="Once upon a time", max_tokens=100, json_schema=json.dumps(schema),
                    sampling=inference_pb2.SamplingParams(temperature=0.8, seed=seed)), timeout=60))
                value = json.loads(text)
                check(set(value) == {"hero", "age"} and isinstance(value["hero"], str) and len(value["hero"]) <= 20
                      and 1 <= value["age"] <= 12, f"Generate with json_schema gives JSON the schema accepts: {text}")
            answer = "".join(r.text for r in stub.Chat(inference_pb2.ChatRequest(
                messages=[inference_pb2.ChatMessage(role="user", content="Is the sky blue?")], max_tokens=10,
                grammar='root ::= ("yes" | "no") "."'), timeout=60))
            check(answer in ("yes.", "no."), f"Chat with a grammar follows it: {answer!r}")
            tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {
                "type": "object", "properties": {"city": {"type": "string", "maxLength": 12}}, "required": ["city"]}}}]
            responses = list(stub.Chat(inference_pb2.ChatRequest(
                messages=[inference_pb2.ChatMessage(role="user", content="Weather in Oslo?")], max_tokens=300,
                sampling=inference_pb2.SamplingParams(seed=11), tools_json=json.dumps(tools),
                tool_choice="required"), timeout=60))
            calls = responses[-1].tool_calls
            check(len(calls) >= 1 and calls[0].name == "get_weather" and calls[0].id.startswith("call_")
                  and isinstance(json.loads(calls[0].arguments)["city"], str)
                  and responses[-1].finish_reason == inference_pb2.FINISH_REASON_TOOL_CALLS,
                  f"Chat with tool_choice required returns the call in tool_calls: {calls}")
            try:
                list(stub.Generate(inference_pb2.GenerateRequest(prompt="hi", max_tokens=4, grammar="root ::= item"),
                                   timeout=10))
                check(False, "an undefined rule is refused")
            except grpc.RpcError as error:
                check(error.code() == grpc.StatusCode.INVALID_ARGUMENT and "rule 'item'" in error.details(),
                      "a grammar with an undefined rule is INVALID_ARGUMENT naming the rule")

            try:
                list(stub.Generate(inference_pb2.GenerateRequest(prompt="hi", max_tokens=0), timeout=10))
                check(False, "max_tokens 0 is refused")
            except grpc.RpcError as error:
                check(error.code() == grpc.StatusCode.INVALID_ARGUMENT, "max_tokens 0 is INVALID_ARGUMENT")
    finally:
        daemon.send_signal(signal.SIGTERM)
        try:
            code = daemon.wait(timeout=60)
        except subprocess.TimeoutExpired:
            daemon.kill()
            code = None
        check(code == 0, "edgellmd exits 0 on SIGTERM")
        shutil.rmtree(work, ignore_errors=True)

    print(f"{len(passed)} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
