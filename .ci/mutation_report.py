"""Per-module mutation score from `mutmut results --all true` (stdin), against the 85 % target.

A mutant counts as killed when a test failed or timed out. Survivors listed in the equivalents
file (one `mutant-name  reason` per line) are left out of the score, and reported apart; every
other survivor is printed, so it can be killed by a test or argued equivalent.
"""

import sys
from collections import defaultdict

TARGET = 0.85


def module_of(mutant: str) -> str:
    for marker in (".x_", ".xǁ"):
        if marker in mutant:
            return mutant.split(marker)[0]
    return mutant.rsplit(".", 1)[0]


def main() -> int:
    equivalent = {}
    for line in open(sys.argv[1], encoding="utf-8"):
        if line.strip() and not line.startswith("#"):
            name, _, reason = line.strip().partition(" ")
            equivalent[name] = reason.strip()
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    survivors = []
    for line in sys.stdin:
        name, sep, status = line.strip().rpartition(": ")
        if not sep:
            continue
        module = module_of(name)
        if status in ("killed", "timeout", "caught by type check"):
            counts[module]["killed"] += 1
        elif status == "skipped":
            continue
        elif name in equivalent:
            counts[module]["equivalent"] += 1
        else:
            counts[module]["survived"] += 1
            survivors.append(f"{name}: {status}")
    ok = True
    print(f"{'module':32s} {'mutants':>8s} {'killed':>7s} {'equiv.':>7s} {'alive':>6s} {'score':>7s}")
    for module in sorted(counts):
        c = counts[module]
        scored = c["killed"] + c["survived"]
        score = c["killed"] / scored if scored else 1.0
        ok &= score >= TARGET
        total = scored + c["equivalent"]
        print(
            f"{module:32s} {total:8d} {c['killed']:7d} {c['equivalent']:7d} {c['survived']:6d} {100 * score:6.1f}%"
            f" {'✓' if score >= TARGET else '✗'}"
        )
    print(f"\ntarget: at least {100 * TARGET:.0f} % killed in every module (equivalent mutants left out)")
    if survivors:
        print(f"\n{len(survivors)} surviving mutants (see one with `cd $MUTATION_DIR && python3 -m mutmut show NAME`):")
        print("\n".join("  " + s for s in survivors))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
