"""The one report type of the benchmarks: figures, tables and findings written as
``<results-dir>/<name>.json`` and ``<name>.md`` (atomically) with the machine, the command line,
the date and the load average.

The Markdown body comes from ``bench/templates/<name>.md``: the benchmark's prose, with
``{findings}``, ``{tables}`` and the report's values as placeholders, so that explanatory sections
survive a rerun.
"""

from __future__ import annotations

import argparse
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.machine import command_line, load_average, machine_info, utc_now
from bench.progress import log
from upsample.core.io import atomic_path

RESULTS_DIR = Path(__file__).resolve().parent / "results"
TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
DEFAULT_TEMPLATE = "## Findings\n\n{findings}\n\n{tables}\n"


@dataclass
class Table:
    """A titled table: ``rows`` are dicts keyed by ``columns`` (missing keys print as blank)."""

    title: str
    columns: list[str]
    rows: list[dict[str, Any]]
    note: str = ""


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if value != value:  # NaN
            return "n/a"
        for bound, spec in ((100, ",.0f"), (10, ".1f"), (0.1, ".2f")):
            if abs(value) >= bound:
                return format(value, spec)
        return f"{value:.3g}"
    return str(value).replace("|", "\\|")


def markdown_table(table: Table) -> str:
    """A ``Table`` as GitHub-flavoured Markdown under a level-3 title."""
    lines = [f"### {table.title}", ""] + ([table.note, ""] if table.note else [])
    lines.append("| " + " | ".join(table.columns) + " |")
    lines.append("|" + "|".join("---" for _ in table.columns) + "|")
    lines += [
        "| " + " | ".join(_cell(row.get(c)) for c in table.columns) + " |" for row in table.rows
    ]
    return "\n".join(lines)


def _bullets(markdown: str, title: str) -> list[str]:
    """The bullet lines of the section ``## <title>`` of ``markdown``, without the dashes."""
    section = re.search(rf"^## {title}\n\n((?:- .*(?:\n|$))+)", markdown, re.MULTILINE)
    return [line[2:] for line in section.group(1).splitlines()] if section else []


@dataclass
class Report:
    """The figures of one benchmark run and where, when and how they were measured.

    The Markdown body is the template ``bench/templates/<template or name>.md``, whose prose may
    hold ``{findings}`` (the ``findings`` as bullets), ``{tables}`` and any key of ``settings``
    and ``values``; the JSON's ``method`` and ``findings`` are the bullets of the filled-in
    template's sections of those names, and ``data`` is written to the JSON beside them.
    """

    name: str
    title: str
    settings: dict[str, Any]
    tables: list[Table] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)
    template: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    machine: dict[str, Any] = field(default_factory=machine_info)
    command: str = field(default_factory=command_line)
    started: str = field(default_factory=utc_now)
    load_average_start: list[float] | None = field(default_factory=load_average)
    finished: str | None = None
    load_average_end: list[float] | None = None

    @classmethod
    def start(
        cls, args: argparse.Namespace, name: str, title: str, template: str = "", **settings: Any
    ) -> Report:
        """A report whose settings begin with the run's ``threads`` and ``quick``."""
        settings = {"threads": args.threads, "quick": args.quick, **settings}
        return cls(name, title, settings, template=template)

    def header(self) -> str:
        """Title, command, dates, machine, load and settings (``templates/header.md``)."""
        flags = ", ".join(self.machine["cpu_flags"]) or "none of interest"
        settings = ", ".join(f"{key}={value}" for key, value in self.settings.items())
        return (
            (TEMPLATES_DIR / "header.md")
            .read_text()
            .format_map({**vars(self), **self.machine, "flags": flags, "settings": settings})
        )

    def body(self) -> str:
        """The benchmark's template filled in (its findings and tables where it says)."""
        path = TEMPLATES_DIR / f"{self.template or self.name}.md"
        template = path.read_text() if path.is_file() else DEFAULT_TEMPLATE
        return template.format_map(
            {
                **self.settings,
                **self.values,
                "findings": "\n".join(f"- {line}" for line in self.findings),
                "tables": "\n\n".join(markdown_table(table) for table in self.tables),
            }
        )

    def to_markdown(self) -> str:
        """The ``<name>.md`` file: the header, then the filled-in template."""
        text = self.header().strip() + "\n\n" + self.body().strip() + "\n"
        return re.sub(r"\n{3,}", "\n\n", text)

    def to_json(self) -> dict[str, Any]:
        """The ``<name>.json`` file: where, when and how, settings, findings, tables, data."""
        body = self.body()
        return {
            "name": self.name,
            "title": self.title,
            "command": self.command,
            "started": self.started,
            "finished": self.finished,
            "load_average_start": self.load_average_start,
            "load_average_end": self.load_average_end,
            "machine": self.machine,
            "settings": self.settings,
            "method": _bullets(body, "Method"),
            "findings": _bullets(body, "Findings"),
            "tables": [vars(table) for table in self.tables],
            **self.data,
        }

    def write(self, results_dir: Path = RESULTS_DIR) -> tuple[Path, Path]:
        """Write ``<results_dir>/<name>.json`` and ``.md`` atomically, print the Markdown and
        say where the files went."""
        self.finished, self.load_average_end = utc_now(), load_average()
        json_path, markdown_path = (Path(results_dir) / f"{self.name}{s}" for s in (".json", ".md"))
        write_json(json_path, self.to_json())
        with atomic_path(markdown_path) as temporary:
            temporary.write_text(self.to_markdown())
        print(self.to_markdown())
        log(f"wrote {json_path} and {markdown_path}")
        return json_path, markdown_path


def write_json(path: Path, content: Any) -> None:
    """Write ``content`` as indented JSON, atomically, making the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as temporary:
        temporary.write_text(json.dumps(content, indent=2, default=str) + "\n")


def read_json(path: Path) -> Any | None:
    """The JSON in ``path``, or ``None`` when there is no such file."""
    return json.loads(path.read_text()) if path.is_file() else None
