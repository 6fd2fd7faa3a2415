#!/usr/bin/env python3
"""A client in another language, built from the .proto files alone.

Generates Python stubs for edgellm.v1 and grpc.health.v1 with protoc and
grpc_python_plugin, starts a real edgellmd on a temporary unix socket, and
checks health, a greedy stream against llama.cpp's reference tokens,
ListModels, an INVALID_ARGUMENT refusal, and a clean SIGTERM exit.
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
    args = parser.parse_args()

    if not os.path.exists(args.model):
        if os.environ.get("CI"):
            print(f"missing shared file {args.model}")
            return 1
        print(f"skipping: missing shared file {args.model}")
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
    daemon = subprocess.Popen([args.edgellmd, "--model", args.model, "--listen", f"unix:{socket}", "--threads", "1"])
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
