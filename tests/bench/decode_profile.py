#!/usr/bin/env python3
"""Where a decode step's time goes, from `perf script -F pid,tid,ip,sym,dso` on stdin
(lines of `PID/TID - SYMBOL (LIBRARY)`).

The process's main thread (its tid is its pid) calls the forward: its time is
the step's time, so its samples are the step's breakdown; the others are the
pool's workers, whose samples show how much of the step they spend working.
(A worker spinning between jobs is sampled as often as the caller, so the
busiest thread is not always the caller.) For a forward called from another
thread (edgellmd's scheduler), pass that thread's id as the argument. Each sample is put in one category by its leaf symbol:

  kernels    the matrix products (quantized, interleaved, float, and BLAS's,
             whose inner loops have no symbols) and attention (scores,
             softmax maximum and exponentials, weighted sums)
  row-wise   norms, rotary embedding, the SwiGLU gate, copies
  hand-off   the thread pool handing out chunks and waiting for them, and
             the kernel entered from there (yield, futex)
  sampling   picking the next token
  other      everything else (named below)
"""
import collections
import sys

CATEGORIES = [
    ("hand-off", ("ThreadPool::Run", "ThreadPool::DoChunks", "ThreadPool::WorkerLoop", "sched_yield", "futex",
                  "__atomic_wait", "pvm_irq_enable", "syscall")),
    ("kernels", ("InterleaveRows", "DotInterleaved", "MultiplyInterleaved", "DotF32", "DotF16", "WeightedRowSum",
                 "ExpInPlace", "MaxOf", "AttendOneKvHead", "MergeAttentionParts", "sgemm", "MultiplyQuantized",
                 "QuantMatMulShared", "kernels::", "Quantize", "sgemv", "libopenblas")),
    ("row-wise", ("RmsNorm", "Rope", "SwiGlu", "CpuForward", "memmove", "memcpy", "memset", "WriteKv", "PositionHeads",
                  "AddToResidual", "AddBias")),
    ("sampling", ("Sampler", "max_element", "ArgMax")),
]


def category(symbol):
    for name, keys in CATEGORIES:
        if any(k in symbol for k in keys):
            return name
    return "other"


def symbol_of(text):
    """The symbol of `SYMBOL (LIBRARY)`, or `[unknown] in LIBRARY` where it has none."""
    symbol, _, library = text.strip().rpartition(" (")
    if not symbol or not library.endswith(")"):
        return text.strip()
    if symbol == "[unknown]":
        return f"[unknown] in {library[:-1].rsplit('/', 1)[-1]}"
    return symbol


def main():
    per_thread = collections.defaultdict(collections.Counter)
    main_thread = None
    for line in sys.stdin:
        fields = line.split(None, 2)
        ids = fields[0].split("/") if fields else []
        if len(fields) == 3 and len(ids) == 2 and all(i.isdigit() for i in ids):
            per_thread[ids[1]][symbol_of(fields[2])] += 1
            if ids[0] == ids[1]:
                main_thread = ids[1]
    if len(sys.argv) > 1:
        main_thread = sys.argv[1]
    if main_thread not in per_thread:
        sys.exit("decode_profile.py: no samples of the calling thread on stdin")
    workers = sorted((c for tid, c in per_thread.items() if tid != main_thread), key=lambda c: -sum(c.values()))
    threads = [per_thread[main_thread]] + workers
    caller_total = sum(threads[0].values())
    for index, symbols in enumerate(threads[:4]):
        total = sum(symbols.values())
        if index > 0 and total < caller_total / 20:
            break
        by_category = collections.Counter()
        for symbol, n in symbols.items():
            by_category[category(symbol)] += n
        role = "calling thread (the step's time)" if index == 0 else f"worker {index}"
        print(f"{role}: {total} samples")
        for name, _ in CATEGORIES + [("other", ())]:
            print(f"  {name:9s} {100.0 * by_category[name] / total:5.1f}%")
        others = [(s, n) for s, n in symbols.most_common() if category(s) == "other"][:4]
        if others:
            print("  other is: " + ", ".join(f"{s[:48]} {100.0 * n / total:.1f}%" for s, n in others))
    main_categories = collections.Counter()
    for symbol, n in threads[0].items():
        main_categories[category(symbol)] += n
    outside = 100.0 * (caller_total - main_categories["kernels"]) / caller_total
    print(f"decode_outside_kernels_percent={outside:.1f}")


if __name__ == "__main__":
    main()
