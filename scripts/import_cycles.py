#!/usr/bin/env python3
"""Reports import cycles between the Rust files of a crate.

usage: scripts/import_cycles.py CRATE_SRC_DIR [CRATE_SRC_DIR ...]

Each file is a module (lib.rs is the crate root; foo.rs and foo/mod.rs are
`foo`). Every `crate::…`, `super::…` and `self::…` path in the file (in `use`
items, brace groups expanded, and inline paths) is resolved to the file of
the longest module prefix it names. A file importing another is an edge;
`mod foo;` declarations are not, but
inline paths through a declared child module (`pages::home`) are. Test items (`#[cfg(test)]` and the item it
marks) are skipped. Prints every strongly connected group of more than
one file, and exits 1 if there is one.
"""
import os
import re
import sys


def module_of(root, path):
    rel = os.path.relpath(path, root)[:-3].split(os.sep)
    if rel in (['lib'], ['main']):
        return ()
    if rel[-1] == 'mod':
        rel = rel[:-1]
    return tuple(rel)


def expand(path):
    """`a::{b, c::{d, self}}` -> [a::b, a::c::d, a::c]"""
    m = re.search(r'\{', path)
    if not m:
        return [path]
    prefix = path[:m.start()].rstrip(':')
    depth, parts, cur = 0, [], ''
    for ch in path[m.end():]:
        if ch == '{':
            depth += 1
        elif ch == '}':
            if depth == 0:
                break
            depth -= 1
        if ch == ',' and depth == 0:
            parts.append(cur); cur = ''
        else:
            cur += ch
    parts.append(cur)
    out = []
    for p in (p.strip() for p in parts):
        if not p:
            continue
        if p == 'self':
            out.append(prefix)
        else:
            out.extend(expand(prefix + '::' + p))
    return out


def strip_test_items(code):
    """Removes each `#[cfg(test)]` item: the attribute and the item after it,
    up to its `;` or its balanced `{ … }` block (string and char literals
    are not parsed, which is enough for module and function items)."""
    out, i = [], 0
    while True:
        t = code.find('#[cfg(test)]', i)
        if t < 0:
            out.append(code[i:])
            return ''.join(out)
        out.append(code[i:t])
        j = t + len('#[cfg(test)]')
        while j < len(code) and code[j] not in '{;':
            j += 1
        if j < len(code) and code[j] == '{':
            depth = 0
            while j < len(code):
                if code[j] == '{':
                    depth += 1
                elif code[j] == '}':
                    depth -= 1
                    if depth == 0:
                        break
                j += 1
        i = j + 1


def paths_in(code):
    code = re.sub(r'//[^\n]*', '', code)
    code = strip_test_items(code)
    found = []
    for m in re.finditer(r'\buse\s+([^;]+);', code):
        found.extend(expand(re.sub(r'\s+', '', m.group(1))))
    for m in re.finditer(r'(?<![\w:])((?:crate|super|self)(?:::\w+)+)', code):
        found.append(m.group(1))
    # Inline paths through a child module declared here (`pages::home`).
    for child in re.findall(r'^\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*;', code, re.M):
        for m in re.finditer(r'(?<![\w:])(' + child + r'(?:::\w+)+)', code):
            found.append('self::' + m.group(1))
    return found


def resolve(path, here, is_dir_module, modules):
    segs = path.split('::')
    if segs[0] == 'crate':
        base, segs = [], segs[1:]
    else:
        # In foo.rs or foo/mod.rs, `self` is foo and `super` is its parent.
        base = list(here)
        while segs and segs[0] in ('self', 'super'):
            if segs[0] == 'super':
                base = base[:-1]
            segs = segs[1:]
    full = base + [s for s in segs if s != 'self']
    for n in range(len(full), -1, -1):
        if tuple(full[:n]) in modules:
            return tuple(full[:n])
    return None


def cycles(root):
    files = {}
    for d, _, names in os.walk(root):
        for n in names:
            if n.endswith('.rs'):
                p = os.path.join(d, n)
                files[module_of(root, p)] = p
    edges = {m: set() for m in files}
    for m, p in files.items():
        for path in paths_in(open(p, encoding='utf-8').read()):
            target = resolve(path, m, p.endswith('mod.rs'), files)
            if target is not None and target != m:
                edges[m].add(target)
    # Tarjan's strongly connected components.
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]; counter[0] += 1
        stack.append(v); on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w); low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop(); on.discard(w); comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(files[c] for c in comp))

    sys.setrecursionlimit(10000)
    for v in files:
        if v not in index:
            visit(v)
    return files, edges, out


def main():
    bad = False
    for root in sys.argv[1:]:
        files, edges, found = cycles(root)
        n = sum(len(e) for e in edges.values())
        print(f'{root}: {len(files)} files, {n} imports between files, {len(found)} cycle(s)')
        for comp in found:
            bad = True
            print('  cycle among: ' + ', '.join(os.path.relpath(f, root) for f in comp))
    sys.exit(1 if bad else 0)


if __name__ == '__main__':
    main()
