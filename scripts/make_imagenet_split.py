#!/usr/bin/env python
"""Derive the ImageNet natural / artificial (man-made) class split from WordNet 3.0.

Writes ``repalign/resources/imagenet_natural_artificial.csv`` with columns

    wnid, class_index, name, split, reason

for the 1,000 ILSVRC-2012 classes, in the standard class order (sorted WNIDs; ``class_index`` is what
``torchvision.datasets.ImageFolder`` and every ImageNet checkpoint use).

Inputs (both install here, no network needed at run time):

* the 1,000 WNIDs and their lemmas, shipped inside timm: ``timm/data/_info/imagenet_synsets.txt`` and
  ``imagenet_synset_to_lemma.txt``;
* the WordNet 3.0 noun database ``data.noun`` (Debian package ``wordnet-base``:
  ``apt-get update && apt-get install -y wordnet-base`` puts it at ``/usr/share/wordnet/data.noun``; or pass
  ``--wordnet PATH`` / set ``WNSEARCHDIR``). An ImageNet WNID ``nXXXXXXXX`` is the WordNet 3.0 noun offset.

The rule (Yosinski et al. 2014, "How transferable are features in deep neural networks?", Sec. 4.2, split the
classes into man-made and natural ones; their released split has 551 man-made, 449 natural classes):

* **natural** when the class descends (hypernyms, instance hypernyms, transitively) from one of
  organism (n00004475), natural object (n00019128), geological formation (n09287968), produce (n07705711:
  fruit and vegetables) or fodder (n07800740: hay);
* **artificial** otherwise: descendants of artifact (n00021939, 522 classes) plus prepared food and drink
  (pizza, espresso, ...), signs and signals (street sign, traffic light), menu, plate, bubble, toilet tissue;
* one override: ``mashed potato`` (n07711569) is artificial (a prepared dish), although WordNet files it under
  potato → vegetable → produce.

The result is 551 artificial / 449 natural, identical to Yosinski et al.'s released split (man-made = class
indices 398-935, 959-969, 971, 999). The stricter "descendant of artifact" rule alone gives 522 / 478; the
``reason`` column records which ancestor decided each class so either reading can be recovered.

Usage::

    python scripts/make_imagenet_split.py [--wordnet /usr/share/wordnet/data.noun] [--out PATH] [--check]
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import sys
from pathlib import Path

ARTIFACT = "00021939"
#: WordNet 3.0 noun offsets whose descendants are natural, in the order they are reported in ``reason``.
NATURAL_ROOTS = {
    "00004475": "organism",
    "00019128": "natural_object",
    "09287968": "geological_formation",
    "07705711": "produce",
    "07800740": "fodder",
}
#: Classes WordNet's hierarchy places on the other side of the man-made/natural line than Yosinski et al.
OVERRIDES = {"n07711569": ("artificial", "override:prepared_dish")}

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "repalign" / "resources" / "imagenet_natural_artificial.csv"
WORDNET_CANDIDATES = ["/usr/share/wordnet/data.noun", "/usr/local/share/wordnet/data.noun"]


def find_wordnet(path: str | None) -> Path:
    """Locate WordNet 3.0 ``data.noun`` (argument, ``$WNSEARCHDIR``, then Debian's location)."""
    candidates = [path] if path else []
    if os.environ.get("WNSEARCHDIR"):
        candidates.append(os.path.join(os.environ["WNSEARCHDIR"], "data.noun"))
    candidates += WORDNET_CANDIDATES
    for c in candidates:
        if c and Path(c).is_file():
            return Path(c)
    raise FileNotFoundError(
        f"WordNet 3.0 noun database not found (looked at {candidates}). Fix: "
        "`apt-get update && apt-get install -y wordnet-base` (Debian/Ubuntu), or pass --wordnet PATH/data.noun"
    )


def read_hypernyms(data_noun: Path) -> dict[str, list[str]]:
    """Map each noun synset offset to its hypernym and instance-hypernym offsets (WordNet ``data.noun``)."""
    hyper: dict[str, list[str]] = {}
    with open(data_noun, encoding="latin-1") as fh:
        for line in fh:
            if line.startswith("  "):  # licence header
                continue
            fields = line.split(" | ", 1)[0].split()
            offset, n_words = fields[0], int(fields[3], 16)
            i = 4 + 2 * n_words
            n_ptrs = int(fields[i])
            i += 1
            parents = []
            for _ in range(n_ptrs):
                symbol, target, pos = fields[i], fields[i + 1], fields[i + 2]
                i += 4
                if symbol in ("@", "@i") and pos == "n":
                    parents.append(target)
            hyper[offset] = parents
    return hyper


def ancestors(offset: str, hyper: dict[str, list[str]]) -> set[str]:
    """All transitive hypernyms of ``offset`` (not including itself)."""
    seen: set[str] = set()
    stack = list(hyper.get(offset, []))
    while stack:
        o = stack.pop()
        if o not in seen:
            seen.add(o)
            stack.extend(hyper.get(o, []))
    return seen


def timm_synsets() -> tuple[list[str], dict[str, str]]:
    """The 1,000 ImageNet WNIDs (standard order) and their lemmas, from timm's bundled info files."""
    import importlib.util

    spec = importlib.util.find_spec("timm")  # locate the package without importing it (and torch)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("timm is not installed: `pip install timm` (it ships the ImageNet synset list)")
    info = Path(spec.submodule_search_locations[0]) / "data" / "_info"
    wnids = [w.strip() for w in (info / "imagenet_synsets.txt").read_text().splitlines() if w.strip()]
    lemmas = {}
    for line in (info / "imagenet_synset_to_lemma.txt").read_text().splitlines():
        if "\t" in line:
            w, lemma = line.split("\t", 1)
            lemmas[w] = lemma.strip()
    if len(wnids) != 1000 or wnids != sorted(wnids):
        raise ValueError(f"unexpected timm imagenet_synsets.txt: {len(wnids)} WNIDs")
    return wnids, lemmas


def classify(wnid: str, hyper: dict[str, list[str]]) -> tuple[str, str]:
    """(split, reason) for one WNID."""
    if wnid in OVERRIDES:
        return OVERRIDES[wnid]
    offset = wnid[1:]
    if offset not in hyper:
        raise KeyError(f"{wnid} is not a WordNet 3.0 noun synset")
    anc = ancestors(offset, hyper) | {offset}
    for root, label in NATURAL_ROOTS.items():
        if root in anc:
            return "natural", label
    return "artificial", "artifact" if ARTIFACT in anc else "other_man_made"


def build_rows(data_noun: Path) -> list[dict[str, str]]:
    hyper = read_hypernyms(data_noun)
    wnids, lemmas = timm_synsets()
    rows = []
    for idx, w in enumerate(wnids):
        split, reason = classify(w, hyper)
        name = lemmas.get(w, w).split(",")[0].strip()
        rows.append({"wnid": w, "class_index": str(idx), "name": name, "split": split, "reason": reason})
    return rows


def to_csv(rows: list[dict[str, str]]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=["wnid", "class_index", "name", "split", "reason"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--wordnet", help="path to WordNet 3.0 data.noun")
    ap.add_argument("--out", default=str(DEFAULT_OUT))
    ap.add_argument("--check", action="store_true", help="only compare with the existing file; exit 1 if it differs")
    args = ap.parse_args(argv)
    rows = build_rows(find_wordnet(args.wordnet))
    text = to_csv(rows)
    n_art = sum(r["split"] == "artificial" for r in rows)
    n_strict = sum(r["reason"] == "artifact" for r in rows)
    print(f"artificial {n_art}, natural {len(rows) - n_art} (descendants of artifact alone: {n_strict})")
    out = Path(args.out)
    if args.check:
        same = out.is_file() and out.read_text() == text
        print(f"{out}: {'up to date' if same else 'DIFFERS'}")
        return 0 if same else 1
    sys.path.insert(0, str(REPO))
    from repalign.core.files import atomic_write_text

    atomic_write_text(out, text)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
