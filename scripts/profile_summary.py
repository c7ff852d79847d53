#!/usr/bin/env python3
"""Tabulates a Chrome trace written by `bench_model --profile FILE` (LibTorch's profiler):
self time per op (its time minus the ops it called), its share of the step, and call counts.
A developer's tool (the product needs no Python): `python3 scripts/profile_summary.py FILE [N]`."""
import collections
import json
import sys


def main():
    path = sys.argv[1]
    top = int(sys.argv[2]) if len(sys.argv) > 2 else 30
    events = [e for e in json.load(open(path)) if e.get("ph") == "X"]
    by_thread = collections.defaultdict(list)
    for e in events:
        by_thread[e["tid"]].append(e)
    self_us = collections.Counter()
    total_us = collections.Counter()
    calls = collections.Counter()
    step_us = 0.0
    for thread_events in by_thread.values():
        # Parents start first and end last: sort by start, longest first, and walk a stack.
        thread_events.sort(key=lambda e: (e["ts"], -e["dur"]))
        stack = []
        for e in thread_events:
            start, end = e["ts"], e["ts"] + e["dur"]
            while stack and stack[-1][1] <= start:
                stack.pop()
            if stack:
                stack[-1][2]["child"] += e["dur"]
            else:
                step_us += e["dur"]
            record = {"name": e["name"], "dur": e["dur"], "child": 0.0}
            stack.append((start, end, record))
            e["_record"] = record
        for e in thread_events:
            r = e["_record"]
            self_us[r["name"]] += r["dur"] - r["child"]
            total_us[r["name"]] += r["dur"]
            calls[r["name"]] += 1
    print(f"{'op':50s} {'self ms':>9s} {'share':>6s} {'total ms':>9s} {'calls':>6s}")
    for name, us in self_us.most_common(top):
        print(f"{name[:50]:50s} {us / 1000:9.2f} {100 * us / step_us:5.1f}% "
              f"{total_us[name] / 1000:9.2f} {calls[name]:6d}")
    print(f"{'(top-level ops, all threads)':50s} {step_us / 1000:9.2f}")


if __name__ == "__main__":
    main()
