"""Helpers of the search tier: trees built both in a FileSystem and in a plain directory
(so GNU grep can be asked the same question), and the queries called as the daemon does."""
from __future__ import annotations

import os
import random
import subprocess

from corelib import ROOT, make_file

from nexusfs.search import ops
from nexusfs.types import ROOT_INO, Caller

WORDS = ["alpha", "beta", "gamma", "token", "refresh", "TODO", "FIXME", "auth", "nexus",
         "def", "return", "import", "class", "value", "zeta", "Kappa", "x_1", "foo.bar",
         "a+b", "(paren)", "[br]", "caf\u00e9", "na\u00efve", "tab\there", "end$"]


async def mkdirs(fs, path: str, caller: Caller = ROOT) -> int:
    ino = ROOT_INO
    for part in [p for p in path.strip("/").split("/") if p]:
        found = fs.meta.lookup(ino, part.encode())
        if found is None:
            attr = await fs.mkdir(ino, part.encode(), 0o755, caller)
            fs.forget([(attr.ino, 1)])
            found = attr.ino
        ino = found
    return ino


async def put(fs, path: str, data: bytes, caller: Caller = ROOT, plain_root=None) -> int:
    """Create ``path`` (and its directories) with ``data``; mirror it under ``plain_root``."""
    d, _, name = path.strip("/").rpartition("/")
    parent = await mkdirs(fs, d, caller)
    ino = await make_file(fs, name.encode(), data, parent=parent, caller=caller)
    if plain_root is not None:
        full = os.path.join(plain_root, path.strip("/"))
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "wb") as f:
            f.write(data)
    return ino


def random_text(r: random.Random, lines: int) -> bytes:
    out = []
    for _ in range(lines):
        out.append(" ".join(r.choice(WORDS) for _ in range(r.randint(0, 8))))
    text = "\n".join(out)
    if r.random() < 0.8:
        text += "\n"
    return text.encode()


async def random_tree(fs, plain_root, seed: int, files: int = 60) -> list[str]:
    r = random.Random(seed)
    dirs = ["", "src", "src/lib", "docs", "deep/er/still", "a b"]
    paths = []
    for i in range(files):
        path = f"{r.choice(dirs)}/f{i}{r.choice(['.py', '.txt', '', '.md'])}".lstrip("/")
        data = random_text(r, r.randint(0, 30))
        if r.random() < 0.05:
            data = b"\0binary " + data
        await put(fs, "/" + path, data, plain_root=plain_root)
        paths.append("/" + path)
    return paths


def gnu_grep(root, pattern: str, *flags: str) -> list[str]:
    """LC_ALL=C grep -r -E over a plain directory: lines with the root turned into '/'."""
    r = subprocess.run(["grep", "-r", "-E", *flags, "--", pattern, "."], cwd=root,
                       capture_output=True, env={**os.environ, "LC_ALL": "C"})
    assert r.returncode in (0, 1), r.stderr
    return sorted(line[1:].decode("utf-8", "surrogateescape")
                  for line in r.stdout.splitlines())


async def all_pages(fs, caller, pattern, page: int = 1000, **kw) -> list[dict]:
    out = []
    after = None
    while True:
        res = await ops.grep(fs.search, caller, pattern, limit=page, after=after, **kw)
        out.extend(res["results"])
        if res["next"] is None:
            return out
        after = res["next"]


def as_grep_lines(results, numbers: bool = True, count: bool = False, files: bool = False):
    out = []
    for r in results:
        if count:
            out.append(f"{r['path']}:{r['count']}")
        elif files:
            out.append(r["path"])
        elif r.get("binary"):
            continue
        else:
            out.append(f"{r['path']}:{r['line']}:{r['text']}" if numbers else
                       f"{r['path']}:{r['text']}")
    return sorted(out)
