"""What every benchmark ends with: its Markdown table printed and written beside its raw figures.

write_report(Path("benchmarks/results/first_layer"), table, {"environment": ..., "results": [...]})
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def write_report(out: Path, table: str, data: dict[str, Any]) -> None:
    """Print ``table`` and write ``OUT.md`` (the table) and ``OUT.json`` (``data``, sorted keys)."""
    print(table)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(data, indent=2, sort_keys=True))
    out.with_suffix(".md").write_text(table + "\n")
    print(f"wrote {out}.json and .md")
