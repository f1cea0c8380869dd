"""``make rehearsal``: every paper-scale code path, run end to end on generated data (issue #23).

``make paper`` needs data sets and weights that cannot be had on every machine (CIFAR-10/100, UCI CT, the full
MNIST, ImageNet, Office-31, torchvision's ImageNet weights, four ImageNet pre-trainings). The rehearsal stands in
for each with something of the exact on-disk form, small:

- :func:`write_data`: made-up images and rows in the real formats (CIFAR pickles, MNIST IDX, the CT csv with its
  header, all 1,000 ImageNet wnid folders, the Office-31 archive's ``<domain>/images/<class>/`` layout); each class
  has its own smooth pattern under pixel noise and a share of the images shows another class's
  (:data:`CONFUSED`), so the data are learnable but not separable. The data root gets a
  manifest (:mod:`repalign.data.manifest`): the loaders then label the data "rehearsal on generated data".
- :func:`write_weights`: random weight files with the real keys and file names under ``$TORCH_HOME/hub/checkpoints``,
  where torchvision's builders look for them.
- :func:`checkpoint_commands`: notebook 09's four checkpoints, by the exact commands paper-check prints with size
  flags appended (argparse keeps the last), one of them under a 2-process gloo ``torchrun``.

The notebooks then run through the Makefile's scale machinery with ``SCALE=rehearsal``
(``notebooks/params/rehearsal/*.yaml``, which differ from the paper yamls in sizes only: :func:`size_differences`).

Command line (the Makefile's ``rehearsal`` target)::

    python -m repalign.run.rehearsal prepare --root build/rehearsal --steps data,weights
    python -m repalign.run.rehearsal prepare --root build/rehearsal --steps checkpoints
    python -m repalign.run.rehearsal check                           # the yamls differ in sizes only
"""

from __future__ import annotations

import argparse
import io
import os
import pickle
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from repalign.core.files import atomic_write_bytes
from repalign.data import OFFICE31_CLASSES, OFFICE31_DOMAINS, imagenet_wnids, manifest
from repalign.data.torchvision import CIFAR10_CLASSES
from repalign.data.uci import CT_COLUMNS, CT_FILE
from repalign.run import params

__all__ = [
    "SIZE_PARAMETERS",
    "LOCATION_PARAMETERS",
    "DATASETS",
    "NETWORKS",
    "size_differences",
    "write_data",
    "write_weights",
    "checkpoint_commands",
    "make_checkpoints",
    "STEPS",
    "prepare",
    "main",
]

#: parameters that set how much is computed (counts, epochs, steps, image and batch sizes, seeds, draws), never
#: what: a rehearsal yaml may make these smaller (seeds: a prefix), nothing else
SIZE_PARAMETERS: tuple[str, ...] = (
    "seeds", "n", "n_test", "n_per_class", "regression_n", "synthetic_n", "synthetic_rank", "synthetic_k",
    "random_width", "epochs", "epochs_shuffled", "steps", "gd_steps", "record_every", "finetune_per_group",
    "finetune_epochs", "n_train_per_class", "n_test_per_class", "n_align_per_class", "n_finetune_per_class",
    "image_size", "rbf_centers", "dictionary_atoms", "dictionary_epochs", "sift_words", "max_random_epochs",
    "check_every", "target_epochs", "batch_size", "finetune_batch_size",
)  # fmt: skip
#: the scale's name and where a run writes (anything: the runner keeps it in its folder); what it reads stays the
#: paper's (``checkpoints`` name ``$REPALIGN_DATA/pretrain/...``: the rehearsal's data root when it runs)
LOCATION_PARAMETERS: tuple[str, ...] = ("run_scale", "figures_dir", "results_dir")
#: the data sets the paper yamls read from disk
DATASETS: tuple[str, ...] = ("cifar10", "cifar100", "mnist", "ct_position", "office31", "imagenet")
#: torchvision networks whose ImageNet weights the paper yamls load (08, 10, 11)
NETWORKS: tuple[str, ...] = (
    "vgg16", "resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "densenet121", "densenet169",
    "densenet201", "mnasnet1_0", "mobilenet_v2", "googlenet", "inception_v3",
)  # fmt: skip
#: the share of generated images drawn with a random class's pattern (the rest show their own class's)
CONFUSED = 0.3
#: the checkpoint made under two processes (the others under one)
TWO_PROCESS = "resnet18_imagenet_natural"


# ------------------------------------------------------------------------------------------------ sizes only
def size_differences(paper: Mapping[str, Any], ours: Mapping[str, Any]) -> list[str]:
    """How ``ours`` (a rehearsal's parameters) differs from ``paper`` other than in sizes: one line per difference,
    empty when they differ only in :data:`SIZE_PARAMETERS` (smaller or equal; ``seeds`` a non-empty prefix) and in
    :data:`LOCATION_PARAMETERS`."""
    problems = [f"{k}: left out" for k in paper if k not in ours]
    problems += [f"{k}: added" for k in ours if k not in paper]
    for key in paper:
        if key in ours and key not in LOCATION_PARAMETERS:
            problems += _compare(paper[key], ours[key], key, sized=key in SIZE_PARAMETERS)
    return problems


def _compare(paper: Any, ours: Any, where: str, *, sized: bool) -> list[str]:
    """Differences between two values at ``where``: a sized value may shrink, any other must be equal; mappings are
    compared key by key (their keys' names decide what is a size)."""
    if isinstance(paper, Mapping) and isinstance(ours, Mapping):
        if set(paper) != set(ours):
            return [f"{where}: keys {sorted(map(str, paper))} became {sorted(map(str, ours))}"]
        return [d for k in paper for d in _compare(paper[k], ours[k], f"{where}.{k}", sized=k in SIZE_PARAMETERS)]
    if sized and _is_number(paper) and _is_number(ours):
        return [] if 0 < ours <= paper or ours == paper else [f"{where}: {ours!r} is not a size up to {paper!r}"]
    if sized and isinstance(paper, list) and isinstance(ours, list):
        ok = 0 < len(ours) <= len(paper) and ours == paper[: len(ours)]
        return [] if ok else [f"{where}: {ours!r} is not a prefix of {paper!r}"]
    return [] if ours == paper and type(ours) is type(paper) else [f"{where}: {paper!r} became {ours!r}"]


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


# ------------------------------------------------------------------------------------------------ generated data
def _patterns(k: int, shape: tuple[int, ...], seed: int) -> np.ndarray:
    """One smooth pattern per class, (k, *shape) in [-1, 1]: sums of a few random low-frequency waves."""
    rng = np.random.default_rng(seed)
    c, h, w = shape
    yy, xx = np.meshgrid(np.linspace(0, np.pi, h), np.linspace(0, np.pi, w), indexing="ij")
    out = np.zeros((k, c, h, w))
    for i in range(k):
        for _ in range(3):
            fy, fx = rng.integers(1, 4, size=2)
            phase = rng.uniform(0, 2 * np.pi, size=(c, 1, 1))
            out[i] += np.cos(fy * yy + fx * xx + phase) * rng.uniform(0.5, 1.0)
    return out / np.abs(out).max(axis=(1, 2, 3), keepdims=True)


def _images(labels: np.ndarray, patterns: np.ndarray, seed: int) -> np.ndarray:
    """uint8 images (n, c, h, w): the class pattern at a random strength under pixel noise; a :data:`CONFUSED`
    share of the images shows another class's pattern, so that no learner separates the classes (learnable, not
    separable: at most about 1 - CONFUSED (k - 1) / k of them can be right)."""
    rng = np.random.default_rng(seed)
    shown = np.where(rng.random(len(labels)) < CONFUSED, rng.integers(0, len(patterns), len(labels)), labels)
    strength = rng.uniform(0.1, 0.3, size=(len(labels), 1, 1, 1))
    noise = rng.normal(scale=0.25, size=(len(labels), *patterns.shape[1:]))
    x = 0.5 + strength * patterns[shown] + noise
    return (np.clip(x, 0, 1) * 255).round().astype(np.uint8)


def _labels(k: int, per_class: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).permutation(np.repeat(np.arange(k), per_class))


def _put(path: Path, data: bytes) -> Path:
    """Write a file of a data set being staged (:func:`write_data` moves the whole folder into place)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _write_pickle(path: Path, record: dict[str, Any]) -> None:
    _put(path, pickle.dumps(record, protocol=2))


def _write_cifar(root: Path, name: str, per_class: tuple[int, int]) -> list[Path]:
    """CIFAR-10 (``cifar-10-batches-py``: five training batches, ``test_batch``, ``batches.meta``) or CIFAR-100
    (``cifar-100-python``: ``train``, ``test``, ``meta``), torchvision's pickles."""
    from torchvision.datasets import CIFAR10, CIFAR100

    ten = name == "cifar10"
    cls, k = (CIFAR10, 10) if ten else (CIFAR100, 100)
    folder = root / cls.base_folder
    patterns = _patterns(k, (3, 32, 32), seed=10 + k)
    written = []
    for split, (files, n) in {"train": (cls.train_list, per_class[0]), "test": (cls.test_list, per_class[1])}.items():
        y = _labels(k, n, seed=len(split) + k)
        x = _images(y, patterns, seed=len(split) * 7 + k).reshape(len(y), -1)
        for part, (filename, _) in zip(np.array_split(np.arange(len(y)), len(files)), files, strict=True):
            key = "labels" if ten else "fine_labels"
            record = {"batch_label": f"generated {filename}", key: y[part].tolist(), "data": x[part],
                      "filenames": [f"generated_{i}.png" for i in part]}  # fmt: skip
            if not ten:
                record["coarse_labels"] = (y[part] // 5).tolist()
            _write_pickle(folder / filename, record)
            written.append(folder / filename)
    names = {cls.meta["key"]: _class_names(name, k)}
    if not ten:
        names["coarse_label_names"] = [f"superclass_{i}" for i in range(20)]
    _write_pickle(folder / cls.meta["filename"], names)
    return [*written, folder / cls.meta["filename"]]


def _class_names(name: str, k: int) -> list[str]:
    """The real class names, in torchvision's order (the notebooks pick classes by name)."""
    names = list(CIFAR10_CLASSES) if name == "cifar10" else list(_CIFAR100)
    if len(names) != k:
        raise AssertionError(f"{name}: {len(names)} class names for {k} classes")
    return names


def _idx(array: np.ndarray) -> bytes:
    """An IDX file (MNIST's format): magic (0, 0, type 0x08 = uint8, ndim), big-endian sizes, the bytes."""
    head = bytes([0, 0, 8, array.ndim]) + b"".join(int(s).to_bytes(4, "big") for s in array.shape)
    return head + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def _write_mnist(root: Path, per_class: tuple[int, int]) -> list[Path]:
    """MNIST's four IDX files under ``MNIST/raw`` (torchvision's layout; uncompressed, as torchvision keeps them)."""
    patterns = _patterns(10, (1, 28, 28), seed=28)
    written = []
    for prefix, n, seed in (("train", per_class[0], 1), ("t10k", per_class[1], 2)):
        y = _labels(10, n, seed)
        x = _images(y, patterns, seed + 100)[:, 0]
        for kind, array in (("images-idx3", x), ("labels-idx1", y)):
            path = root / "MNIST" / "raw" / f"{prefix}-{kind}-ubyte"
            written.append(_put(path, _idx(array)))
    return written


def _write_ct(root: Path, n: int) -> list[Path]:
    """``ct_position/slice_localization_data.csv``: the UCI header, ``n`` rows; the reference (the target) is a
    noisy linear function of the 384 features, spread over 97 patients."""
    rng = np.random.default_rng(384)
    x = rng.normal(size=(n, 384)) * 0.3
    ref = 50 + 20 * np.tanh(x @ rng.normal(size=384) / 4) + rng.normal(scale=5, size=n)
    lines = [",".join(CT_COLUMNS)]
    lines += [
        f"{i % 97},{','.join(f'{v:.4f}' for v in row)},{r:.4f}" for i, (row, r) in enumerate(zip(x, ref, strict=True))
    ]
    return [_put(root / "ct_position" / CT_FILE, ("\n".join(lines) + "\n").encode())]


def _jpeg(image: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.moveaxis(image, 0, -1)).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def _write_folders(folders: Sequence[Path], per_class: int, size: int, seed: int, suffix: str) -> list[Path]:
    """``per_class`` JPEG images of ``size`` px in each of ``folders`` (one class each)."""
    patterns = _patterns(len(folders), (3, size, size), seed)
    y = np.repeat(np.arange(len(folders)), per_class)
    x = _images(y, patterns, seed + 1)
    written = []
    for i, (label, image) in enumerate(zip(y, x, strict=True)):
        path = folders[label] / f"generated_{i:06d}{suffix}"
        written.append(_put(path, _jpeg(image)))
    return written


def _write_imagenet(root: Path, per_class: tuple[int, int]) -> list[Path]:
    """``imagenet/{train,val}/<wnid>/*.JPEG`` for all 1,000 wnids."""
    wnids = imagenet_wnids()
    written = []
    for split, n, seed in (("train", per_class[0], 1000), ("val", per_class[1], 2000)):
        written += _write_folders([root / "imagenet" / split / w for w in wnids], n, 32, seed, ".JPEG")
    return written


def _write_office31(root: Path, per_class: int) -> list[Path]:
    """``office31/<domain>/images/<class>/*.jpg`` (the archive's layout), every domain and class."""
    written = []
    for j, domain in enumerate(OFFICE31_DOMAINS):
        folders = [root / "office31" / domain / "images" / c for c in OFFICE31_CLASSES]
        written += _write_folders(folders, per_class, 32, 3100 + j, ".jpg")
    return written


#: each data set's writer and sizes (images or rows per class, or in all: train, test)
_WRITERS: dict[str, tuple[Callable[..., list[Path]], tuple[Any, ...]]] = {
    "cifar10": (_write_cifar, ("cifar10", (60, 20))),
    "cifar100": (_write_cifar, ("cifar100", (10, 4))),
    "mnist": (_write_mnist, ((510, 30),)),
    "ct_position": (_write_ct, (1200,)),
    "office31": (_write_office31, (4,)),
    "imagenet": (_write_imagenet, ((1, 1),)),
}
#: bump when a writer's output changes: a copy generated otherwise is written again
GENERATOR_VERSION = 1


def _recipe(name: str) -> str:
    """How data set ``name`` is generated: the version, the writer's sizes and :data:`CONFUSED`."""
    return f"v{GENERATOR_VERSION} {_WRITERS[name][1]!r} confused={CONFUSED}"


def write_data(root: str | os.PathLike[str], names: Iterable[str] = DATASETS) -> Path:
    """Write generated copies of data sets ``names`` (of :data:`DATASETS`) under data root ``root``, in their real
    on-disk formats, and list them in the root's manifest (:func:`repalign.data.manifest.write_manifest`). Each
    data set is written into a temporary sibling folder and moved into place whole, replacing an earlier copy; one
    the manifest lists with every file intact is kept as it is (so that make does not re-run the notebooks).

    Returns the manifest's path.
    """
    base = Path(root)
    unknown = [n for n in names if n not in _WRITERS]
    if unknown:
        raise ValueError(f"no generated form of {unknown}; the rehearsal writes {', '.join(DATASETS)}")
    base.mkdir(parents=True, exist_ok=True)
    files = {}
    for name in names:
        if _intact(base, name):
            continue
        stage = Path(tempfile.mkdtemp(prefix=f".rehearsal-{name}-", dir=base))
        try:
            writer, args = _WRITERS[name]
            relative = [p.relative_to(stage) for p in writer(stage, *args)]
            for top in sorted({p.parts[0] for p in relative}):
                if (base / top).exists():
                    shutil.rmtree(base / top)
                os.replace(stage / top, base / top)
        finally:
            shutil.rmtree(stage, ignore_errors=True)
        files[name] = relative
    return manifest.write_manifest(base, files, {name: _recipe(name) for name in files})


def _intact(base: Path, name: str) -> bool:
    """Whether the manifest of ``base`` lists data set ``name``, generated by today's recipe, with every listed file
    there and unchanged."""
    listed = ((manifest.read_manifest(base) or {}).get("sources") or {}).get(name) or {}
    current = manifest.recipe(base, name) == _recipe(name)
    return current and bool(listed) and manifest.vouches_for(base, name, list(listed))


# ------------------------------------------------------------------------------------------------ weights
def write_weights(torch_home: str | os.PathLike[str], names: Iterable[str] = NETWORKS) -> list[Path]:
    """Random weights for torchvision networks ``names`` under ``<torch_home>/hub/checkpoints``, each under the file
    name of its ``DEFAULT`` ImageNet weights and with the keys torchvision's builder loads (strictly). A file
    already there is kept. Returns the files, in the order of ``names``."""
    import torch
    import torchvision

    folder = Path(torch_home) / "hub" / "checkpoints"
    written = []
    for name in names:
        url = torchvision.models.get_model_weights(name).DEFAULT.url
        path = folder / os.path.basename(url)
        if not path.is_file():
            extra = {"aux_logits": True, "init_weights": False} if name in ("googlenet", "inception_v3") else {}
            with torch.random.fork_rng(devices=[]):  # seeded per network: the same files on every run
                torch.manual_seed(zlib.crc32(name.encode()))
                model = torchvision.models.get_model(name, weights=None, **extra)
            buf = io.BytesIO()
            torch.save(model.state_dict(), buf)
            atomic_write_bytes(path, buf.getvalue())
        written.append(path)
    return written


# ------------------------------------------------------------------------------------------------ checkpoints
def checkpoint_commands(*, epochs: int = 1, image_size: int = 32, batch_size: int = 64) -> list[str]:
    """The commands that make notebook 09's missing rehearsal checkpoints: exactly what ``repalign paper-check
    --scale rehearsal`` prints for each, on 1 process (:data:`TWO_PROCESS` on 2), with ``--epochs --image-size
    --batch-size`` and ``--workers 0`` appended (argparse keeps the last; no data-loading processes, which cost more
    than they give on a few hundred tiny images). Empty when every checkpoint is there and finished."""
    from repalign.run import paper_check  # the printed commands: one source of truth (loads torch)

    missing, _ = paper_check.paper_check("rehearsal", ["09"])
    printed = sorted(_printed_command(m) for m, _, _ in missing.values() if "make it with: " in m)
    sizes = f" --epochs {int(epochs)} --image-size {int(image_size)} --batch-size {int(batch_size)} --workers 0"
    commands = []
    for cmd in printed:
        nproc = 2 if Path(_out_folder(cmd)).name == TWO_PROCESS else 1
        commands.append(re.sub(r"--nproc_per_node=\d+", f"--nproc_per_node={nproc}", cmd) + sizes)
    return commands


def _printed_command(message: str) -> str:
    """The command in a paper-check message ``... make it with: <command> (pre-training takes ...) ...``."""
    return message.split("make it with: ", 1)[1].split(" (", 1)[0].strip()


def _out_folder(command: str) -> str:
    """The ``--out`` folder of a pre-training command (the last one given)."""
    args = shlex.split(command)
    outs = [args[i + 1] for i, a in enumerate(args[:-1]) if a == "--out"]
    if not outs:
        raise ValueError(f"rehearsal: no --out in {command!r}")
    return outs[-1]


def make_checkpoints(workdir: Path, commands: Sequence[str], env: Mapping[str, str]) -> None:
    """Run ``commands`` (:func:`checkpoint_commands`) in ``workdir``, the venv's ``torchrun`` first on the PATH.

    Raises:
        ValueError: a command's ``--out`` is not inside ``workdir`` (the rehearsal writes nowhere else).
        RuntimeError: a command failed.
    """
    path = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    for cmd in commands:
        out = (workdir / _out_folder(cmd)).resolve()
        if not out.is_relative_to(workdir.resolve()):
            raise ValueError(f"rehearsal: {cmd!r} would write to {out}, outside {workdir}")
        start = time.perf_counter()
        print(f"[rehearsal] {cmd}", flush=True)
        done = subprocess.run(shlex.split(cmd), cwd=workdir, env={**env, "PATH": path}, check=False)
        if done.returncode:
            raise RuntimeError(f"rehearsal: the checkpoint command failed (exit {done.returncode}): {cmd}")
        print(f"[rehearsal] done in {time.perf_counter() - start:.0f} s", flush=True)


#: what :func:`prepare` makes, in order
STEPS: tuple[str, ...] = ("data", "weights", "checkpoints")


def prepare(root: str | os.PathLike[str], steps: Sequence[str] = STEPS) -> dict[str, Path]:
    """What the rehearsal's notebooks read, under ``root``: ``data`` (generated data with its manifest in
    ``root/data``: the ``$REPALIGN_DATA`` of the run), ``weights`` (``root/torch``: its ``$TORCH_HOME``) and
    ``checkpoints`` (09's, in ``root/data/pretrain``), the ``steps`` asked for. Returns the two folders.

    Raises:
        ValueError: ``$REPALIGN_DATA`` or ``$TORCH_HOME`` is set to another folder (the notebooks would not read
            what is written here; ``make rehearsal`` sets both), or an unknown step.
    """
    base = Path(root).resolve()
    folders = {"data": base / "data", "torch": base / "torch"}
    for variable, folder in (("REPALIGN_DATA", folders["data"]), ("TORCH_HOME", folders["torch"])):
        if Path(os.environ.get(variable, folder)).resolve() != folder:
            raise ValueError(
                f"rehearsal: ${variable} is {os.environ[variable]}, not {folder}: unset it or set it there"
            )
    unknown = [s for s in steps if s not in STEPS]
    if unknown:
        raise ValueError(f"rehearsal: unknown steps {unknown}; the steps are {', '.join(STEPS)}")
    env = {**os.environ, "REPALIGN_DATA": str(folders["data"]), "TORCH_HOME": str(folders["torch"])}
    actions = {
        "data": lambda: write_data(folders["data"]),
        "weights": lambda: write_weights(folders["torch"]),
        "checkpoints": lambda: make_checkpoints(base, checkpoint_commands(), env),
    }
    saved = {k: os.environ.get(k) for k in ("REPALIGN_DATA", "TORCH_HOME")}
    os.environ.update({k: env[k] for k in saved})  # paper-check prints the commands for this data root
    try:
        for step in steps:
            start = time.perf_counter()
            actions[step]()
            print(f"[rehearsal] {step} ready in {time.perf_counter() - start:.0f} s", flush=True)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return folders


def _check_yamls() -> int:
    """Print each rehearsal yaml's differences from its paper yaml beyond sizes (and a location not in the
    rehearsal's folders); exit status 1 when there are any."""
    bad = 0
    for stem in params.list_notebooks():
        ours = params.scale_parameters(stem, "rehearsal")
        diffs = size_differences(params.scale_parameters(stem, "paper"), ours)
        diffs += [f"{k}: {ours.get(k)!r} does not name the rehearsal" for k in LOCATION_PARAMETERS
                  if "rehearsal" not in str(ours.get(k))]  # fmt: skip
        for line in diffs:
            print(f"{stem}: {line}")
        bad += bool(diffs)
    return int(bad > 0)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m repalign.run.rehearsal {prepare --root DIR [--steps data,weights,checkpoints] | check}``."""
    parser = argparse.ArgumentParser(prog="python -m repalign.run.rehearsal", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare", help="generated data, random weights and 09's checkpoints under --root")
    p.add_argument("--root", required=True, help="the rehearsal's folder (data/, torch/ go under it)")
    p.add_argument("--steps", default=",".join(STEPS), help=f"comma-separated, of {', '.join(STEPS)} (default all)")
    sub.add_parser("check", help="the rehearsal yamls differ from the paper yamls in sizes only")
    args = parser.parse_args(argv)
    if args.command == "check":
        return _check_yamls()
    try:
        prepare(args.root, [s.strip() for s in args.steps.split(",") if s.strip()])
    except (OSError, ValueError, RuntimeError) as err:
        return params.user_error(err)
    return 0


_CIFAR100 = (
    "apple aquarium_fish baby bear beaver bed bee beetle bicycle bottle bowl boy bridge bus butterfly camel can castle "
    "caterpillar cattle chair chimpanzee clock cloud cockroach couch crab crocodile cup dinosaur dolphin elephant "
    "flatfish forest fox girl hamster house kangaroo keyboard lamp lawn_mower leopard lion lizard lobster man "
    "maple_tree motorcycle mountain mouse mushroom oak_tree orange orchid otter palm_tree pear pickup_truck pine_tree "
    "plain plate poppy porcupine possum rabbit raccoon ray road rocket rose sea seal shark shrew skunk skyscraper snail "
    "snake spider squirrel streetcar sunflower sweet_pepper table tank telephone television tiger tractor train trout "
    "tulip turtle wardrobe whale willow_tree wolf woman worm"
).split()

if __name__ == "__main__":
    sys.exit(main())
