"""Makes DEST a directory of links to the installed `torch` and every distribution it requires.

The Python install check gives its clean venv this directory (through a `.pth` file) instead
of downloading torch's 5 GB again: pip then sees torch 2.11.0 as installed and checks the
wheel's `torch==2.11.0` requirement against it, and nothing else of the project venv (no
dupify, no test tools) is visible. Run it with the project venv's Python.
"""

import importlib.metadata as md
import os
import re
import sys

from packaging.requirements import Requirement

dest = sys.argv[1]
os.makedirs(dest, exist_ok=True)
seen, todo = set(), [Requirement("torch")]
while todo:
    req = todo.pop()
    name = re.sub(r"[-_.]+", "-", req.name).lower()
    key = (name, frozenset(req.extras))
    if key in seen:
        continue
    try:
        dist = md.distribution(name)
    except md.PackageNotFoundError:
        continue  # a requirement for another platform: not installed here
    seen.add(key)
    # Its requirements that apply here, with the extras it was asked for (torch asks for
    # `cuda-toolkit[cudart,...]`), as pip evaluates them.
    for text in dist.requires or []:
        sub = Requirement(text)
        if sub.marker is None or any(sub.marker.evaluate({"extra": e}) for e in req.extras | {""}):
            todo.append(sub)
    site = dist.locate_file("")
    tops = {str(f).split("/")[0] for f in dist.files or [] if not str(f).startswith("..")}
    for top in tops:
        src, dst = os.path.join(site, top), os.path.join(dest, top)
        if top != "__pycache__" and os.path.exists(src) and not os.path.lexists(dst):
            os.symlink(src, dst)
print(" ".join(sorted({n for n, _ in seen})))
