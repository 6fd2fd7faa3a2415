#!/usr/bin/env python3
"""Times edgellmd from its start to health SERVING, as a client sees it.

Each run starts a real edgellmd on a temporary unix socket and asks
grpc.health.v1.Health/Check over it (Python's grpcio, the messages encoded by
hand: an empty request, and a response whose field 1 is SERVING = 1) every
5 ms until the answer is SERVING; then reads the daemon's resident memory,
once at that moment and once a second later (after the idle loop's row-cost
measurement), and stops it with SIGTERM. Run with the page cache warm: the
first run reads the file once beforehand.

Usage: startup_bench.py --edgellmd PATH --model FILE [--runs 5] [--threads 2] [--daemon-arg=ARG ...]
"""
import argparse
import os
import signal
import statistics
import subprocess
import tempfile
import time

import grpc

SERVING_RESPONSE = b"\x08\x01"  # HealthCheckResponse{status: SERVING}


def resident_mib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError("no VmRSS line")


def time_to_serving(edgellmd, model, threads, extra, work):
    socket = os.path.join(work, "edgellmd.sock")
    log = open(os.path.join(work, "log"), "w")
    started = time.monotonic()
    command = [edgellmd, "--model", model, "--listen", f"unix:{socket}", "--threads", str(threads)] + extra
    daemon = subprocess.Popen(command, stderr=log)
    try:
        check = None
        while True:
            if daemon.poll() is not None:
                raise RuntimeError(f"edgellmd exited with {daemon.returncode}; see {log.name}")
            if check is None and os.path.exists(socket):
                channel = grpc.insecure_channel(f"unix:{socket}")
                check = channel.unary_unary("/grpc.health.v1.Health/Check", request_serializer=lambda _: b"",
                                            response_deserializer=lambda b: b)
            if check is not None:
                try:
                    if check(None, timeout=1.0) == SERVING_RESPONSE:
                        break
                except grpc.RpcError:
                    pass
            time.sleep(0.005)
        seconds = time.monotonic() - started
        rss_at_serving = resident_mib(daemon.pid)
        time.sleep(1.0)
        rss_later = resident_mib(daemon.pid)
        channel.close()
        return seconds, rss_at_serving, rss_later
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=30)
        log.close()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--edgellmd", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--daemon-arg", action="append", default=[], help="one more edgellmd argument (repeatable)")
    args = parser.parse_args()
    with open(args.model, "rb") as model:  # the page cache warm, as the figure is defined
        while model.read(1 << 24):
            pass
    size_mib = os.path.getsize(args.model) / (1 << 20)
    times = []
    for run in range(1, args.runs + 1):
        with tempfile.TemporaryDirectory() as work:
            seconds, rss, rss_later = time_to_serving(args.edgellmd, args.model, args.threads, args.daemon_arg, work)
        times.append(seconds)
        print(f"run {run}: SERVING after {seconds:.3f} s, resident {rss:.0f} MiB then {rss_later:.0f} MiB "
              f"(file {size_mib:.0f} MiB)", flush=True)
    print(f"startup_s median={statistics.median(times):.3f} min={min(times):.3f} max={max(times):.3f} "
          f"runs={len(times)} model={os.path.basename(args.model)} threads={args.threads} "
          f"args={' '.join(args.daemon_arg) or '-'}")


if __name__ == "__main__":
    main()
