#!/usr/bin/env python3
"""Splits a server's CPU samples (perf record -g) into the kernel, SwiftNIO and the gateway's own code.

Reads `perf script -F ip,sym` output on stdin. Each sample is one stack, leaf first:

* kernel: the stack entered the kernel through a system call (named by the libc wrapper that made it), or the
  leaf is in the kernel outside a system call (interrupts, page faults);
* user space, by owner: walking up from the leaf, runtime frames (swift_*, malloc, memmove, ...) and ByteBuffer
  methods (a data structure every layer uses) are skipped; the first frame left decides: the gateway's modules
  (CometCore, CometGateway), SwiftNIO (NIOCore, NIOPosix), or anything else (for nginx: nginx and Nchan).

With --per-op-us X (the server's CPU time per delivery or per publish, from the benchmark) it also prints each
share in microseconds per operation.
"""
import argparse
import collections
import re
import sys

RUNTIME = re.compile(r"^(swift_|swift::|_swift|__swift|\$ss|\$sS|malloc|free|cfree|_int_|__libc_malloc|__malloc|"
                     r"__mem|memcpy|memmove|memset|__tls_get_addr|tcache|_dl_|__GI___pthread|pthread_|\[unknown\])")
BYTEBUFFER = re.compile(r"^\$s7NIOCore10ByteBuffer")
OURS = re.compile(r"^\$s(9CometCore|12CometGateway)")
NIO = re.compile(r"^\$s(7NIOCore|8NIOPosix|11NIOEmbedded|15NIOConcurrencyHelpers)")


def samples(lines):
    stack = []
    for line in lines:
        line = line.rstrip("\n")
        if not line.strip():
            if stack:
                yield stack
                stack = []
            continue
        parts = line.strip().split(None, 1)
        stack.append(re.sub(r"\+0x[0-9a-f]+$", "", parts[1] if len(parts) > 1 else parts[0]))
    if stack:
        yield stack


def classify(stack):
    entries = [i for i, frame in enumerate(stack) if frame.startswith("entry_SYSCALL")]
    if entries:
        wrapper = stack[entries[-1] + 1] if entries[-1] + 1 < len(stack) else "?"
        name = re.sub(r"^(__GI___libc_|__GI___|__libc_|__)", "", wrapper)
        return "kernel: " + name + "()"
    if any(frame.startswith("asm_") or frame.startswith("exc_") for frame in stack):
        return "kernel: interrupts and faults"
    for frame in stack:
        if RUNTIME.match(frame) or BYTEBUFFER.match(frame):
            continue
        if OURS.match(frame):
            return "user: gateway code (CometCore, CometGateway)"
        if NIO.match(frame):
            return "user: SwiftNIO"
        return "user: other (for nginx: nginx and Nchan)"
    return "user: runtime and libc (no owning frame in the stack)"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--per-op-us", type=float, help="server CPU time per operation, in microseconds")
    args = parser.parse_args()
    counts = collections.Counter(classify(stack) for stack in samples(sys.stdin))
    total = sum(counts.values())
    if not total:
        sys.exit("no samples")
    print(f"{total} samples")
    for group in ("kernel", "user"):
        share = sum(n for key, n in counts.items() if key.startswith(group)) / total
        line = f"{100 * share:6.1f}%  {group}"
        if args.per_op_us:
            line += f"  ({share * args.per_op_us:.2f} us per operation)"
        print(line)
        for key, n in sorted(((k, n) for k, n in counts.items() if k.startswith(group)), key=lambda item: -item[1]):
            line = f"{100 * n / total:6.1f}%    {key.split(': ', 1)[1]}"
            if args.per_op_us:
                line += f"  ({n / total * args.per_op_us:.2f} us)"
            print(line)


if __name__ == "__main__":
    main()
