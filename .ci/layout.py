#!/usr/bin/env python3
"""The house rules of ../shared/ARCHITECTURE.md, checked on the source: prints the import graph
between the crate's top-level modules and exits 1 on a broken rule.

- `privacy/` imports nothing of the crate;
- `policy/` never imports `input`, `protect`, `output` or `ledger` (a plan reads no data and
  spends nothing);
- `output/` (and a future `report/`) never imports `input` (exact cells never reach a file);
- only `commands/release.rs` both begins a ledger transaction and applies a protection;
- no import circles between top-level modules.

An import is any `crate::<module>` path outside a comment. Usage: python3 .ci/layout.py [SRC]
"""
import pathlib
import re
import sys

src = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "src")
ROOTS = {"lib", "main", "bin"}


def module_of(path):
    rel = path.relative_to(src)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def code_lines(path):
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip().startswith("//"):
            yield n, line


edges = {}
problems = []
begins, draws = set(), set()
for path in sorted(src.rglob("*.rs")):
    mod = module_of(path)
    for n, line in code_lines(path):
        for target in re.findall(r"\bcrate::([a-z_]+)", line):
            if target != mod and mod not in ROOTS:
                edges.setdefault(mod, {}).setdefault(target, f"{path}:{n}")
        # `use crate::{a, b::c}` groups
        group = re.search(r"\buse crate::\{([^}]*)\}", line)
        if group and mod not in ROOTS:
            for target in re.findall(r"(?:^|,)\s*([a-z_]+)", group.group(1)):
                if target != mod:
                    edges.setdefault(mod, {}).setdefault(target, f"{path}:{n}")
        if "transaction::begin(" in line:
            begins.add(str(path.relative_to(src)))
        if re.search(r"\.invoke\(", line) and mod not in ROOTS | {"protect"}:
            draws.add(str(path.relative_to(src)))

forbidden = {
    "privacy": None,  # nothing of the crate
    "policy": {"input", "protect", "output", "ledger"},
    "output": {"input"},
    "report": {"input"},
}
for mod, banned in forbidden.items():
    for target, where in sorted(edges.get(mod, {}).items()):
        if banned is None or target in banned:
            problems.append(f"{where}: `{mod}` imports `{target}`")

if begins != {"commands/release.rs"} or not draws <= {"commands/release.rs"}:
    problems.append(
        f"only commands/release.rs may begin a ledger transaction and apply a protection: "
        f"transactions begun in {sorted(begins)}, noise drawn in {sorted(draws)}"
    )

# Circles: depth-first search for a back edge.
state = {}


def visit(node, stack):
    state[node] = "open"
    stack.append(node)
    for target in sorted(edges.get(node, {})):
        if state.get(target) == "open":
            circle = stack[stack.index(target):] + [target]
            problems.append("import circle: " + " -> ".join(circle)
                            + f" (closing at {edges[node][target]})")
        elif target not in state:
            visit(target, stack)
    stack.pop()
    state[node] = "done"


for node in sorted(edges):
    if node not in state:
        visit(node, [])

print("import graph (module -> what it imports):")
for mod in sorted(edges):
    print(f"  {mod:<10} -> {', '.join(sorted(edges[mod]))}")
if problems:
    print("layout rules broken:")
    for p in problems:
        print(f"  - {p}")
    sys.exit(1)
print("layout rules hold")
