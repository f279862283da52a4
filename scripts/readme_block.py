"""Prints the fenced code block that follows `<!-- check: NAME -->` in README.md.

The install checks run the README's install lines and first-use programs through this, so
what the README shows is exactly what CI runs.
"""

import pathlib
import sys

name = sys.argv[1]
lines = (pathlib.Path(__file__).resolve().parents[1] / "README.md").read_text().splitlines()
marker = f"<!-- check: {name} -->"
try:
    i = lines.index(marker)
except ValueError:
    sys.exit(f"README.md has no block marked {marker}")
while not lines[i].startswith("```"):
    i += 1
end = i + 1
while not lines[end].startswith("```"):
    end += 1
print("\n".join(lines[i + 1 : end]))
