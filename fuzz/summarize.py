#!/usr/bin/env python3
"""Totals of a fuzz campaign from the chunk summaries that fuzz/campaign.sh appends to its logs:
    python3 fuzz/summarize.py LOG [LOG ...]
Prints executions, findings, chunks that died, the largest CPU time of one input and the peak
live heap, per target and in total."""
import json
import sys

totals = {}
died = []
peak = 0
for path in sys.argv[1:]:
    for line in open(path):
        try:
            d = json.loads(line)
        except ValueError:
            continue
        if "died" in d:
            died.append(d)
            continue
        peak = max(peak, d.get("peak_heap_bytes", 0))
        for t in ("spec", "batch", "cli"):
            if t in d:
                x = totals.setdefault(t, {"execs": 0, "findings": 0, "max_cpu_s": 0.0, "chunks": 0})
                x["execs"] += d[t]["execs"]
                x["findings"] += d[t]["findings"]
                x["max_cpu_s"] = max(x["max_cpu_s"], d[t].get("max_cpu_s", 0.0))
                x["chunks"] += 1
for t, x in sorted(totals.items()):
    print(f"{t:6} {x['execs']:>9} executions in {x['chunks']} chunks, {x['findings']} findings, "
          f"max CPU per input {x['max_cpu_s']:.2f} s")
print(f"total  {sum(x['execs'] for x in totals.values()):>9} executions, "
      f"{sum(x['findings'] for x in totals.values())} findings, {len(died)} chunks died, "
      f"peak live heap {peak / 2**20:.1f} MiB")
for d in died:
    print("died:", d)
