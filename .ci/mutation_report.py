"""Helpers of .ci/mutation: the groups, each group's mutmut configuration, and the score.

    mutation_report.py --groups pyproject.toml           # the group names
    mutation_report.py --configure GROUP pyproject.toml   # rewrite [tool.mutmut] of a clone for GROUP
    mutmut results --all true | mutation_report.py --score tests/equivalent_mutants.txt

The score is per module, from `mutmut results --all true`, against the 85 % target.

A mutant counts as killed when a test failed or timed out. Survivors listed in the equivalents
file (one `mutant-name  reason` per line) are left out of the score, and reported apart; every
other survivor is printed, so it can be killed by a test or argued equivalent.
"""

import json
import sys
import tomllib
from collections import defaultdict

TARGET = 0.85


def module_of(mutant: str) -> str:
    for marker in (".x_", ".xǁ"):
        if marker in mutant:
            return mutant.split(marker)[0]
    return mutant.rsplit(".", 1)[0]


def groups(pyproject: str) -> dict:
    with open(pyproject, "rb") as f:
        return tomllib.load(f)["tool"]["persistlib"]["mutation"]


def configure(group: str, pyproject: str) -> None:
    """Point the clone's [tool.mutmut] at one group's modules and tests (the rest of the table stays)."""
    spec = groups(pyproject)[group]
    text = open(pyproject, encoding="utf-8").read()
    head, _, rest = text.partition("\n[tool.mutmut]\n")
    body, sep, tail = rest.partition("\n[")
    keep = []
    skipping = False
    for line in body.splitlines():
        if line.startswith(("only_mutate", "pytest_add_cli_args_test_selection")):
            skipping = not line.rstrip().endswith("]")
            continue
        if skipping:
            skipping = line.strip() != "]"
            continue
        keep.append(line)
    keep.append(f"only_mutate = {json.dumps(spec['modules'])}")
    keep.append(f"pytest_add_cli_args_test_selection = {json.dumps(spec['tests'])}")
    with open(pyproject, "w", encoding="utf-8") as f:
        f.write(head + "\n[tool.mutmut]\n" + "\n".join(keep) + "\n" + sep + tail)


def score(equivalents: str) -> int:
    equivalent = {}
    for line in open(equivalents, encoding="utf-8"):
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
        elif status == "not checked":  # the run was stopped before this mutant: no verdict yet
            counts[module]["unchecked"] += 1
        elif name in equivalent:
            counts[module]["equivalent"] += 1
        else:
            counts[module]["survived"] += 1
            survivors.append(f"{name}: {status}")
    ok = True
    print(f"{'module':32s} {'mutants':>8s} {'killed':>7s} {'equiv.':>7s} {'alive':>6s} {'unrun':>6s} {'score':>7s}")
    for module in sorted(counts):
        c = counts[module]
        scored = c["killed"] + c["survived"]
        score = c["killed"] / scored if scored else 1.0
        done = score >= TARGET and not c["unchecked"]
        ok &= done
        total = scored + c["equivalent"] + c["unchecked"]
        print(
            f"{module:32s} {total:8d} {c['killed']:7d} {c['equivalent']:7d} {c['survived']:6d} {c['unchecked']:6d}"
            f" {100 * score:6.1f}% {'✓' if done else '✗'}"
        )
    print(f"\ntarget: at least {100 * TARGET:.0f} % killed in every module (equivalent mutants left out)")
    print("score: killed / (killed + alive); a module with unrun mutants is not done (run `bash .ci/mutation` again)")
    if survivors:
        print(f"\n{len(survivors)} surviving mutants (see one with `cd $MUTATION_DIR && python3 -m mutmut show NAME`):")
        print("\n".join("  " + s for s in survivors))
    return 0 if ok else 1


def main() -> int:
    command, *args = sys.argv[1:]
    if command == "--groups":
        print("\n".join(groups(args[0])))
        return 0
    if command == "--configure":
        configure(*args)
        return 0
    return score(args[0])


if __name__ == "__main__":
    raise SystemExit(main())
