#!/usr/bin/env python3
"""The house rules of ../shared/ARCHITECTURE.md, checked on the source: prints the import graph
between the crate's top-level modules and exits 1 on a broken rule.

- `privacy/` imports nothing of the crate;
- `policy/` never imports `input`, `protect`, `output` or `ledger` (a plan reads no data and
  spends nothing);
- `output/` (and a future `report/`) never imports `input` (exact cells never reach a file);
- only `commands/release.rs` both begins a ledger transaction and applies a protection;
- no import circles between top-level modules;
- no import circles between files: a file's imports are resolved to the file that defines what
  they name (following `pub use` re-exports, which are passages, not uses), `super::` inside an
  inline `mod tests { .. }` names the file itself, and a `mod.rs` that uses a child's items must
  not define what its children import (shared types go to a file below both);
- no function over 90 lines (from its `fn` line to its closing brace; tests aside) without a
  written reason: a comment saying why it is long "on purpose" just above it.

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


# Circles between files. Each file is a module path (`src/protect/sdc/attack/mod.rs` is
# protect::sdc::attack); an import names the file that defines what it names.
def module_path(path):
    parts = list(path.relative_to(src).with_suffix("").parts)
    if parts[-1] == "mod":
        parts = parts[:-1]
    return () if parts in (["lib"], ["main"]) else tuple(parts)


files = {module_path(p): p for p in sorted(src.rglob("*.rs"))
         if p.relative_to(src).parts[0] != "bin"}


def code_of(path):
    """The file without comments, with `pub(in path)` visibility (not an import) blanked."""
    text = re.sub(r"/\*.*?\*/", "", path.read_text(), flags=re.S)
    text = "\n".join(re.sub(r"//.*", "", line) for line in text.splitlines())
    return re.sub(r"\bpub\(in [^)]*\)", "pub", text)


def expand(tree):
    """`a::{b, c::{d, e}}` -> [[a, b], [a, c, d], [a, c, e]] (an `as` rename dropped)."""
    tree = tree.strip()
    group = re.match(r"^(.*?)\{(.*)\}$", tree, re.S)
    if not group:
        return [[s for s in re.sub(r"\s+as\s+\w+$", "", tree).split("::") if s]]
    prefix = [s for s in group.group(1).split("::") if s]
    parts, depth, current = [], 0, ""
    for ch in group.group(2):
        depth += (ch == "{") - (ch == "}")
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    parts.append(current)
    return [prefix + e for part in parts if part.strip() for e in expand(part)]


# `pub use` re-exports: (module, name) -> (module, path). Following them, an import of a name
# through a `mod.rs` lands on the file that defines it.
codes = {mod: code_of(path) for mod, path in files.items()}
reexports, globs = {}, {}
for mod in files:
    for m in re.finditer(r"\bpub(?:\([^)]*\))?\s+use\s+([^;]*);", codes[mod], re.S):
        for segs in expand(m.group(1)):
            if segs[0] not in ("crate", "super", "self"):
                segs = ["self"] + segs
            if segs[-1] == "*":
                globs.setdefault(mod, []).append(segs[:-1])
            else:
                reexports[(mod, segs[-1])] = (mod, segs)


def resolve(here, segs, depth=0):
    """The file that `segs` (starting `crate`, `super` or `self`) names from module `here`."""
    if segs[0] == "crate":
        full = segs[1:]
    elif segs[0] == "self":
        full = list(here) + segs[1:]
    elif segs[0] == "super":
        base, rest = list(here), segs
        while rest and rest[0] == "super":
            base, rest = base[:-1], rest[1:]
        full = base + rest
    else:
        return None
    for k in range(len(full), -1, -1):
        mod = tuple(full[:k])
        if mod not in files:
            continue
        if k < len(full) and depth < 8:
            if (mod, full[k]) in reexports:
                home, target = reexports[(mod, full[k])]
                return resolve(home, target + full[k + 1:], depth + 1) or mod
            for g in globs.get(mod, []):
                found = resolve(mod, g + full[k:], depth + 1)
                if found and found != mod:
                    return found
        return mod
    return None


file_edges, reasons = {}, {}
for mod in files:
    if mod == ():
        continue
    text = re.sub(r"\bpub(?:\([^)]*\))?\s+use\s+[^;]*;", "", codes[mod])
    inline = [m.start() for m in re.finditer(r"\bmod\s+\w+\s*\{", text)]

    def inside(pos, segs):
        # `super::` inside an inline module (`mod tests { .. }`) names this file's module.
        if inline and pos > inline[0] and segs[0] == "super":
            return ["self"] + segs[1:]
        return segs

    imported = []
    for m in re.finditer(r"\buse\s+((?:crate|super|self)\b[^;]*);", text, re.S):
        imported += [inside(m.start(), e) for e in expand(m.group(1))]
    bare = re.sub(r"\buse\s+[^;]*;", lambda m: " " * len(m.group(0)), text)
    for m in re.finditer(r"\b((?:crate|super)(?:::\w+)+)", bare):
        imported.append(inside(m.start(), m.group(1).split("::")))
    # A child module named without `self::` (`use attack::Interval`, `attack::run(..)`).
    for child in re.findall(r"\bmod\s+(\w+)\s*;", text):
        for m in re.finditer(r"(?<![:\w])" + child + r"::(\w+)", bare):
            imported.append(["self", child, m.group(1)])
        for m in re.finditer(r"\buse\s+(" + child + r"\b[^;]*);", text, re.S):
            imported += [["self"] + e for e in expand(m.group(1))]
    for segs in imported:
        target = resolve(mod, segs)
        if target not in (None, (), mod):
            file_edges.setdefault(mod, set()).add(target)
            reasons.setdefault((mod, target), set()).add("::".join(segs[-2:]))


def file_circles():
    """The strongly connected components of the file graph of more than one file (Tarjan)."""
    index, low, open_, stack, found = {}, {}, set(), [], []

    def strong(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        open_.add(v)
        for w in sorted(file_edges.get(v, ())):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in open_:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while not component or component[-1] != v:
                component.append(stack.pop())
                open_.discard(component[-1])
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for v in sorted(files):
        if v not in index:
            strong(v)
    return found


for circle in file_circles():
    links = [
        f"{'::'.join(a)} -> {'::'.join(b)} ({', '.join(sorted(reasons[(a, b)])[:4])})"
        for a in circle for b in sorted(file_edges.get(a, ())) if b in circle
    ]
    problems.append("import circle between files: " + "; ".join(links))

MAX_FUNCTION_LINES = 90
FN = re.compile(r"^(\s*)(pub(\([^)]*\))?\s+)?(const\s+)?(async\s+)?(unsafe\s+)?fn\s+(\w+)")


def long_functions(path):
    """The functions of `path` over MAX_FUNCTION_LINES lines with no reason written above them
    (the test module at a file's end, and files named tests.rs, aside)."""
    lines = path.read_text().split("\n")
    end = next((i for i, l in enumerate(lines) if l.startswith("#[cfg(test)]")), len(lines))
    found = []
    for i, line in enumerate(lines[:end]):
        m = FN.match(line)
        if not m or line.rstrip().endswith(";"):
            continue
        indent = m.group(1)
        j = i + 1
        while j < len(lines) and not (
            lines[j].startswith(indent + "}") and lines[j][len(indent) + 1 : len(indent) + 2] in ("", " ", ";", ")")
        ):
            j += 1
        length = j - i + 1
        above = " ".join(lines[max(0, i - 8) : i])
        if length > MAX_FUNCTION_LINES and "on purpose" not in above:
            found.append(f"{path}:{i + 1}: `{m.group(7)}` is {length} lines, with no reason written above it")
    return found


for path in sorted(src.rglob("*.rs")):
    if path.name != "tests.rs":
        problems.extend(long_functions(path))

print("import graph (module -> what it imports):")
for mod in sorted(edges):
    print(f"  {mod:<10} -> {', '.join(sorted(edges[mod]))}")
if problems:
    print("layout rules broken:")
    for p in problems:
        print(f"  - {p}")
    sys.exit(1)
print("layout rules hold")
