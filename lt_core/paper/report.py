"""The reproduction report: one index, in Markdown and HTML, over what the notebooks wrote.

The notebooks write their tables, figures and claim checks to one report folder
(``<question>_<name>.csv``, ``<question>_<name>.png``, ``<question>_claims.csv``;
:meth:`lt_core.paper.questions.Answer.save`). :func:`write_index` reads that folder back and writes
``index.md`` and ``index.html`` beside the files: how the run was made (preset, seeds, machine,
wall time), Table 1 with the paper's value beside ours, every claim check (also collected in
``claims.csv``), every figure, and the time each notebook took. Both formats are rendered from the
same list of blocks, so they say the same thing; the HTML needs no script and no network.
"""

from __future__ import annotations

import html
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import List, Sequence, Tuple, Union

import pandas as pd

from ..atomic import atomic_write_text
from .table1 import paper_style

QUESTIONS = {"rq1": "RQ1: mask criteria", "rq2": "RQ2: mask-1 policies (signs)", "rq3": "RQ3: mask-0 policies (zeros)",
             "rq4": "RQ4: one-shot supermasks", "rq5": "RQ5: learned supermasks", "table1": "Table 1",
             "families": "Supermask families (Zhou, edge-popup, signed)"}


@dataclass(frozen=True)
class Timing:
    """How one notebook of a reproduction went."""

    notebook: str
    seconds: float
    status: str  # "done", or why it failed


Block = Tuple[str, Union[str, pd.DataFrame]]  # ("h1" | "h2" | "p" | "table" | "img", content)


def machine() -> str:
    """This machine in a few words: CPU cores, architecture, OS and the accelerator torch sees."""
    import os

    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (f"{os.cpu_count()} CPU cores ({platform.machine()}), {platform.system()} {platform.release()}, {gpu}; "
            f"Python {platform.python_version()}, torch {torch.__version__}")


def _cell(value) -> str:
    if isinstance(value, float):
        return "" if pd.isna(value) else f"{value:.2f}"
    return "" if value is None else str(value)


def _markdown_table(frame: pd.DataFrame) -> str:
    head = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(_cell(v).replace("|", "\\|").replace("\n", " ") for v in row) + " |"
            for row in frame.itertuples(index=False)]
    return "\n".join([head, rule] + body)


def _html_table(frame: pd.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_cell(v))}</td>" for v in row) + "</tr>"
                   for row in frame.itertuples(index=False))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def to_markdown(blocks: Sequence[Block]) -> str:
    parts = []
    for kind, content in blocks:
        if kind == "h1":
            parts.append(f"# {content}")
        elif kind == "h2":
            parts.append(f"## {content}")
        elif kind == "p":
            parts.append(str(content))
        elif kind == "table":
            parts.append(_markdown_table(content))
        elif kind == "img":
            parts.append(f"![{content}]({content})")
    return "\n\n".join(parts) + "\n"


def to_html(blocks: Sequence[Block], title: str) -> str:
    parts = []
    for kind, content in blocks:
        if kind in ("h1", "h2"):
            parts.append(f"<{kind}>{html.escape(str(content))}</{kind}>")
        elif kind == "p":
            parts.append(f"<p>{html.escape(str(content))}</p>")
        elif kind == "table":
            parts.append(_html_table(content))
        elif kind == "img":
            parts.append(f'<p><img src="{html.escape(str(content))}" alt="{html.escape(str(content))}"></p>')
    style = ("body{font-family:sans-serif;max-width:70em;margin:2em auto;padding:0 1em}"
             "table{border-collapse:collapse;font-size:0.85em;margin:1em 0}td,th{border:1px solid #ccc;"
             "padding:0.2em 0.5em;vertical-align:top}img{max-width:100%}")
    return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{style}</style></head><body>\n" + "\n".join(parts) + "\n</body></html>\n")


def collect_claims(report_dir) -> pd.DataFrame:
    """Every notebook's claim checks in one frame (question order: rq1 ... rq5)."""
    frames = [pd.read_csv(path) for name in QUESTIONS for path in sorted(Path(report_dir).glob(f"{name}_claims.csv"))]
    columns = ["question", "claim", "verdict", "evidence"]
    return pd.concat(frames, ignore_index=True)[columns] if frames else pd.DataFrame(columns=columns)


def index_blocks(report_dir, *, title: str, about: Sequence[str], timings: Sequence[Timing]) -> List[Block]:
    """The report's blocks: ``about`` paragraphs, Table 1 (the Table 1 notebook's, else the cells RQ4
    gives), claim checks, figures, run times."""
    report = Path(report_dir)
    blocks: List[Block] = [("h1", title)] + [("p", text) for text in about]
    sources = [(name, heading) for name, heading in (("table1_table1.csv", "Table 1"),
                                                     ("rq4_table1_columns.csv", "Table 1: the cells RQ4's runs give"))
               if (report / name).is_file()]
    if sources:
        name, heading = sources[0]
        frame = pd.read_csv(report / name)
        blocks += [("h2", heading),
                   ("p", "Test accuracy (%): ours as mean ± standard deviation over seeds, the paper's value in "
                         f"parentheses. Every cell with the difference and the schedule: {name}."),
                   ("table", paper_style(frame).reset_index())]
        notes = frame[frame["note"].fillna("") != ""].drop_duplicates("network")
        blocks += [("p", f"{r.network}: {r.note}") for r in notes.itertuples()]
    checks = collect_claims(report)
    if len(checks):
        counts = checks["verdict"].value_counts()
        blocks += [("h2", "The paper's claims, checked on our numbers"),
                   ("p", ", ".join(f"{n} {v}" for v, n in counts.items()) + ". All of them: claims.csv."),
                   ("table", checks)]
    for name, words in QUESTIONS.items():
        images = sorted(report.glob(f"{name}_*.png"))
        if images:
            blocks.append(("h2", f"Figures: {words}"))
            blocks += [("img", image.name) for image in images]
    if timings:
        frame = pd.DataFrame([{"notebook": t.notebook, "minutes": round(t.seconds / 60, 2), "status": t.status}
                              for t in timings])
        blocks += [("h2", "Run times"), ("table", frame)]
    return blocks


def write_index(report_dir, *, title: str, about: Sequence[str], timings: Sequence[Timing] = ()) -> List[Path]:
    """Write ``index.md``, ``index.html`` (and the collected ``claims.csv``) into ``report_dir``."""
    report = Path(report_dir)
    report.mkdir(parents=True, exist_ok=True)
    blocks = index_blocks(report, title=title, about=about, timings=timings)
    written = [report / "index.md", report / "index.html"]
    atomic_write_text(written[0], to_markdown(blocks))
    atomic_write_text(written[1], to_html(blocks, title))
    checks = collect_claims(report)
    if len(checks):
        written.append(report / "claims.csv")
        checks.to_csv(written[-1], index=False)
    return written
