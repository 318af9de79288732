"""Join `kiln bench --json` results with the peers' results by (suite, name) and print one
markdown table: kiln fused and unfused ms, each peer's median ms, and the ratio
kiln fused / peer (below 1: kiln is faster; 0.25 means kiln takes a quarter of the
peer's time). Rows without any peer are listed too (kiln-only cases).

Usage: python3 compare.py KILN.json [PEER.json ...]
"""

import json
import sys


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        print(f"cannot read {path}: {e}", file=sys.stderr)
        return {"results": []}


def fmt(ms):
    return "–" if ms is None else (f"{ms:.3f}" if ms < 10 else f"{ms:.1f}")


def main(argv):
    if len(argv) < 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    kiln = load(argv[1])
    peers = {}
    notes = []
    for path in argv[2:]:
        doc = load(path)
        notes.extend(doc.get("notes", []))
        for r in doc.get("results", []):
            peers.setdefault((r["suite"], r["name"]), []).append(r)
    names = sorted({r["peer"] for rs in peers.values() for r in rs})
    head = ["case", "kiln fused ms", "kiln unfused ms"] + [f"{p} ms" for p in names] + \
           [f"kiln/{p}" for p in names]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in kiln.get("results", []):
        fused = r.get("fused_ms")
        row = [f"{r['suite']}: {r['name']}", fmt(fused), fmt(r.get("unfused_ms"))]
        by = {p["peer"]: p for p in peers.get((r["suite"], r["name"]), [])}
        row += [fmt(by[p]["median_ms"]) if p in by else "–" for p in names]
        row += [f"{fused / by[p]['median_ms']:.2f}" if p in by and fused and by[p]["median_ms"] > 0 else "–"
                for p in names]
        print("| " + " | ".join(row) + " |")
    print(f"\nkiln same-run triad: {kiln.get('copy_gbps', float('nan')):.2f} GB/s; "
          "kiln/peer < 1 means kiln is faster.")
    for n in notes:
        print(f"note: {n}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
