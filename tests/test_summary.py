"""The one-screen answer and what it rests on: the README's table is what the generator makes from the committed
claim files, every claim that does not hold says why, each notebook answers the paper's claims docs/PAPER.md
numbers, and every reference to the project's notes on the paper and every Markdown link resolves in the checkout."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from repalign.run import claims
from repalign.run.params import list_notebooks

ROOT = Path(__file__).resolve().parents[1]
NOTES = ROOT / "docs/PAPER.md"
CLAIMS = ROOT / "results" / "claims"
TEXT_SUFFIXES = {".md", ".ipynb", ".yaml", ".yml", ".py", ".toml", ".txt", ".cfg", ".sh"}
MENTION = re.compile(r"PAPER\.md")
#: after a mention: closing quotes, brackets or a link target, then § and a section, optionally one or more items
SECTION = re.compile(
    r"^[`'\"\])]*(?:\([^)\s]*\))?[`'\"]*[ ,]*§(?P<section>\d+)"
    r"(?:\.(?P<item>\d+)|,? (?:items?|claims?) (?P<items>\d+(?:(?:,? and |, )\d+)*))?"
)
LINK = re.compile(r"!?\[[^\]\n]*\]\((?P<target>[^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^```.*?^```", re.M | re.S)
INLINE_CODE = re.compile(r"`[^`\n]*`")


# ------------------------------------------------------------------------------------------------ the answer
def test_the_readme_table_is_what_the_generator_makes_from_the_committed_claim_files():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    generated = claims.with_answer(readme, claims.answer(claims.claim_files(CLAIMS), paper_md="docs/PAPER.md"))
    assert generated == readme, (
        "README.md's answer table is not what the committed claim files give: run "
        ".venv/bin/python -m repalign.run.claims summarize --readme README.md (make replicate does)"
    )


def test_every_claim_that_does_not_hold_in_the_committed_claim_files_says_why():
    silent = [
        f"{f.name}: {c['statement']}"
        for f in sorted(CLAIMS.glob("*.json"))
        for c in json.loads(f.read_text(encoding="utf-8"))["claims"]
        if c["outcome"] == claims.FAILS and not c.get("note", "").strip()
    ]
    assert not silent, f"claims that do not hold without a note (re-run make replicate): {silent}"


def test_each_notebook_answers_the_papers_claims_and_every_claim_has_a_notebook():
    assert set(claims.NOTEBOOK_CLAIMS) == set(list_notebooks()), "NOTEBOOK_CLAIMS must name every notebook"
    answered = {n for ns in claims.NOTEBOOK_CLAIMS.values() for n in ns}
    assert answered == set(claims.PAPER_CLAIMS) == set(range(1, 11))
    for f in sorted(CLAIMS.glob("*.json")):
        record = json.loads(f.read_text(encoding="utf-8"))
        assert set(claims.answered_claims(record)) <= set(claims.PAPER_CLAIMS), f.name


def test_the_claims_titles_are_the_items_of_docs_paper_md_section_3():
    items = _sections()["3"]
    for n, title in claims.PAPER_CLAIMS.items():
        assert re.search(rf'^{n}\. <a id="claim-{n}"></a>\*\*{re.escape(title)}\*\*', items, re.M), (n, title)


# ------------------------------------------------------------------------------------------------ references
def _repository_files() -> list[Path]:
    """The checkout's text files: what git tracks or would track (new files too), else a walk without hidden,
    built or downloaded folders."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT, capture_output=True, check=True, text=True,
        ).stdout.split("\0")  # fmt: skip
        paths = [ROOT / name for name in listed if name]
    except (OSError, subprocess.CalledProcessError):
        skip = {"build", "data", "figures", "node_modules"}
        paths = [p for p in ROOT.rglob("*") if not any(part.startswith(".") or part in skip for part in p.parts)]
    return sorted(p for p in paths if p.is_file() and (p.suffix in TEXT_SUFFIXES or p.name == "Makefile"))


def _units(path: Path) -> Iterator[tuple[str, bool]]:
    """A file's text in pieces, each with whether it is Markdown: a notebook's cells (sources, not outputs)."""
    text = path.read_text(encoding="utf-8", errors="replace")
    if path.suffix != ".ipynb":
        yield text, path.suffix == ".md"
        return
    for cell in json.loads(text).get("cells", []):
        source = cell.get("source", "")
        yield "".join(source) if isinstance(source, list) else source, cell.get("cell_type") == "markdown"


def _slug(heading: str) -> str:
    """GitHub's anchor of a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    text = path.read_text(encoding="utf-8")
    return {_slug(h) for h in re.findall(r"^#+ (.+)$", text, re.M)} | set(re.findall(r'id="([^"]+)"', text))


def _link_problem(source: Path, target: str) -> str:
    """Why a Markdown link from ``source`` does not resolve in the checkout, or ``""``."""
    if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
        return ""
    path, _, anchor = target.partition("#")
    resolved = (source.parent / path).resolve() if path else source
    if not resolved.exists() or not resolved.is_relative_to(ROOT):
        return f"link to {target}: no such file in the checkout"
    if anchor and resolved.suffix == ".md" and anchor not in _anchors(resolved):
        return f"link to {target}: {resolved.relative_to(ROOT)} has no anchor #{anchor}"
    return ""


def _section_problem(after: str, sections: dict[str, str]) -> str:
    """Whether the § and items that follow a mention of docs/PAPER.md exist there."""
    m = SECTION.match(after)
    if m is None:
        return ""
    if m["section"] not in sections:
        return f"docs/PAPER.md has no §{m['section']}"
    items = [m["item"]] if m["item"] else re.findall(r"\d+", m["items"] or "")
    numbered = set(re.findall(r"^(\d+)\. ", sections[m["section"]], re.M))
    missing = [i for i in items if i not in numbered]
    return f"docs/PAPER.md §{m['section']} has no item {', '.join(missing)}" if missing else ""


def _text_problems(text: str, markdown: bool, source: Path, sections: dict[str, str]) -> list[str]:
    """What does not resolve in one piece of ``source``'s text (Markdown: its links too)."""
    found, links = [], []
    if markdown:
        prose = INLINE_CODE.sub(lambda m: " " * len(m[0]), FENCE.sub(lambda m: " " * len(m[0]), text))
        links = [m.span("target") for m in LINK.finditer(prose)]
        found += [p for m in LINK.finditer(prose) if (p := _link_problem(source, m["target"]))]
    for m in MENTION.finditer(text):
        if any(a <= m.start() < b for a, b in links):
            continue  # a link's target: resolved above
        before = text[max(0, m.start() - 12) : m.start()]
        if re.search(r"""docs["']\s*/\s*["']$""", before):
            continue  # a path joined in code: "docs" / "..."
        if not before.endswith("docs/") or re.match(r"\w", before[-6:-5]):
            found.append(f"{text[max(0, m.start() - 20) : m.end()].splitlines()[-1]!r}: not docs/PAPER.md")
        elif problem := _section_problem(text[m.end() : m.end() + 60], sections):
            found.append(problem)
    return found


def _sections() -> dict[str, str]:
    """docs/PAPER.md's sections by number: ``## §N`` to the next."""
    parts = re.split(r"^## §(\d+)", NOTES.read_text(encoding="utf-8"), flags=re.M)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def test_every_reference_to_the_notes_on_the_paper_and_every_link_resolves():
    """A mention of the notes is ``docs/PAPER.md`` (optionally ``§N``, ``§3 item N``, ``§3.N``) or a Markdown link
    that resolves, and its § and items exist; every relative Markdown link (README, docs, notebooks' Markdown cells)
    names a file of the checkout, and an anchor of a Markdown file that it has."""
    sections = _sections()
    problems = {}
    for path in _repository_files():
        found = [p for text, markdown in _units(path) for p in _text_problems(text, markdown, path, sections)]
        if found:
            problems[str(path.relative_to(ROOT))] = found
    assert not problems, "\n".join(f"{name}: {'; '.join(found)}" for name, found in problems.items())


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("see docs/@ §3 item 7", ""),
        ("(`docs/@` §3, items 2 and 5)", ""),
        ("docs/@ §3.9 and docs/@ §3 items 9, 10", ""),
        ("docs/@ §4", ""),
        ("docs/@ §3 item 11", "has no item 11"),
        ("docs/@ §9", "has no §9"),
        ("`shared/@` §3", "not docs/@"),
        ("(@ §1)", "not docs/@"),
        ("mydocs/@", "not docs/@"),
        ('ROOT / "docs" / "@"', ""),
        ("[the notes](../docs/@) §3", ""),
        ("[the notes](docs/@)", "no such file"),
        ("[claim 2](../docs/@#claim-2)", ""),
        ("[claim 12](../docs/@#claim-12)", "no anchor #claim-12"),
        ("[nowhere](../missing.md) and `[code](not/a/link.md)`", "missing.md: no such file"),
    ],
)
def test_the_reference_check_can_fail(text, expected):
    """``@`` stands for the notes' file name (so that this file's examples do not trip the check above)."""
    text, expected = text.replace("@", "PAPER" + ".md"), expected.replace("@", "PAPER" + ".md")
    found = _text_problems(text, True, ROOT / "notebooks" / "probe.md", _sections())  # as if in notebooks/
    assert (expected in "; ".join(found)) if expected else not found, found
    if expected:
        assert len(found) == 1, found
