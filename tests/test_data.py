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

from repalign import data as D
from repalign.data import Dataset, DatasetInfo, load

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
        w.writerow(columns or D.CT_COLUMNS)
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
        pickle.dump({"label_names": list(D.CIFAR10_CLASSES)}, fh)
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
              "cifar10_artificial", "imagenet_natural", "imagenet_artificial"]:  # fmt: skip
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


# ----------------------------------------------------------------------------------------------------------------
# peaks (Caruana 1997) and ct_like
# ----------------------------------------------------------------------------------------------------------------
def test_peaks_tasks_are_all_120():
    tasks = D.peaks_tasks()
    assert len(tasks) == 120 == len(set(tasks))
    assert all(len(set(t)) == 3 and all(0 <= v < 6 for v in t) for t in tasks)


def test_peaks_targets_match_definition():
    x = np.random.default_rng(0).random((50, 6))
    y = D.peaks_targets(x)
    assert y.shape == (50, 120)
    for j, (a, b, c) in enumerate(D.peaks_tasks()):
        for i in range(50):
            assert y[i, j] == (x[i, b] if x[i, a] > 0.5 else x[i, c])
    assert np.array_equal(D.peaks_targets(x, 7), y[:, 7])


def test_peaks_task_specs():
    assert D.peaks_task(0) == D.peaks_task("ABC") == D.peaks_task((0, 1, 2)) == D.peaks_task(["a", "b", "c"])
    assert D.peaks_task("FAD") == (5, 0, 3)
    assert D.peaks_task_name((0, 3, 2)) == "IF A > 0.5 THEN D ELSE C"
    for bad in [120, -1, "AAB", "ABG", (0, 1), (0, 1, 6)]:
        with pytest.raises(ValueError):
            D.peaks_task(bad)


def test_peaks_relatedness():
    assert D.peaks_relatedness("ABC", "ABC") == 3 and D.peaks_relatedness("ABC", "CBA") == 3
    assert D.peaks_relatedness("ABC", "DEF") == 0 and D.peaks_relatedness("ABC", "AEF") == 1
    assert D.peaks_relatedness("ABC", "ADC", kind="roles") == 2
    counts = np.bincount([D.peaks_relatedness(0, t) for t in D.peaks_tasks()])
    assert counts.tolist() == [6, 54, 54, 6]  # 6 tasks use the same three variables, the source among them
    with pytest.raises(ValueError, match="kind"):
        D.peaks_relatedness(0, 1, kind="x")


def test_load_peaks_seeded():
    a = load("peaks", n=200, task="ABC", seed=3)
    b = load("peaks", n=200, task=0, seed=3)
    t = load("peaks", split="test", n=200, task=0, seed=3)
    assert a.x.shape == (200, 6) and a.y.shape == (200,) and a.info.task == "regression"
    assert np.array_equal(a.x, b.x) and not np.array_equal(a.x, t.x)
    assert np.array_equal(a.y, D.peaks_targets(a.x, "ABC")) and a.info.extra["task_index"] == 0
    assert 0 <= a.x.min() and a.x.max() <= 1
    full = load("peaks", n=30)
    assert full.y.shape == (30, 120) and len(full.info.extra["tasks"]) == 120


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
    arr = write_ct_csv(tmp_path / "ct_position" / D.CT_FILE)
    ds = load("ct_position", root=tmp_path)
    assert ds.x.shape == (6, 384) and ds.x.dtype == np.float32 and ds.y.dtype == np.float64
    np.testing.assert_allclose(ds.x, arr[:, 1:-1], rtol=1e-6)
    np.testing.assert_allclose(ds.y, arr[:, -1])
    assert ds.meta["patient_id"].tolist() == [0, 1, 2, 0, 1, 2]
    assert ds.info.task == "regression" and not ds.info.is_standin and ds.info.source == D.CT_URL
    cache = tmp_path / "ct_position" / "slice_localization_data.npz"
    assert cache.is_file()
    np.testing.assert_array_equal(load("ct_position", root=tmp_path).x, ds.x)  # from the cache
    arr2 = write_ct_csv(tmp_path / "ct_position" / D.CT_FILE, n=4, seed=1)  # file changed: cache rebuilt
    os.utime(tmp_path / "ct_position" / D.CT_FILE, ns=(1, 1))
    np.testing.assert_allclose(load("ct_position", root=tmp_path).y, arr2[:, -1])


def test_ct_position_missing(tmp_path):
    with pytest.raises(FileNotFoundError) as e:
        load("ct_position", root=tmp_path)
    msg = str(e.value)
    assert "ct_position" in msg and str(tmp_path / "ct_position" / D.CT_FILE) in msg
    assert "repalign.data fetch ct_position" in msg and D.CT_URL in msg


def test_ct_position_wrong_columns(tmp_path):
    write_ct_csv(tmp_path / "ct_position" / D.CT_FILE, columns=["id", *[f"f{i}" for i in range(384)], "y"])
    with pytest.raises(ValueError, match="patientId, value0 ... value383, reference"):
        load("ct_position", root=tmp_path)


def test_ct_position_not_numeric(tmp_path):
    p = tmp_path / "ct_position" / D.CT_FILE
    write_ct_csv(p, n=2)
    p.write_text(p.read_text() + "x" + ",1" * 385 + "\n")
    with pytest.raises(ValueError, match="not a numeric CSV"):
        load("ct_position", root=tmp_path, cache=False)


def _zip_of(path: Path) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.write(path, D.CT_FILE)
    return buf.getvalue()


def test_ct_position_download(tmp_path, monkeypatch):
    src = tmp_path / "src.csv"
    arr = write_ct_csv(src, n=5)
    monkeypatch.setattr(D, "CT_ROWS", 5)
    urls = []
    monkeypatch.setattr(D, "_download_bytes", lambda url, **k: urls.append(url) or _zip_of(src))
    ds = load("ct_position", root=tmp_path / "root", download=True)
    assert urls == [D.CT_URL] and len(ds) == 5
    np.testing.assert_allclose(ds.y, arr[:, -1])
    assert sorted(p.name for p in (tmp_path / "root" / "ct_position").iterdir()) == [
        "slice_localization_data.csv", "slice_localization_data.npz"]  # fmt: skip


def test_ct_position_download_checks_and_failures(tmp_path, monkeypatch):
    src = tmp_path / "src.csv"
    write_ct_csv(src, n=5)
    root = tmp_path / "root"
    monkeypatch.setattr(D, "_download_bytes", lambda url, **k: _zip_of(src))  # 5 rows, not 53,500
    with pytest.raises(ValueError, match="expected 53500"):
        load("ct_position", root=root, download=True)
    monkeypatch.setattr(D, "_download_bytes", lambda url, **k: b"<html>not a zip</html>")
    with pytest.raises(ValueError, match="did not return a zip"):
        load("ct_position", root=root, download=True)

    def offline(url, **k):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(D, "_download_bytes", offline)
    with pytest.raises(ConnectionError, match="download of .* failed.*unzip"):
        load("ct_position", root=root, download=True)
    assert not (root / "ct_position" / D.CT_FILE).exists()  # nothing half-written
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
    assert ds.x.shape == (20, 3, 32, 32) and ds.info.classes == D.CIFAR10_CLASSES and ds.info.n == 20
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
    assert set(D.CIFAR10_SPLIT["natural"]) | set(D.CIFAR10_SPLIT["artificial"]) == set(D.CIFAR10_CLASSES)
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
    with pytest.raises(FileNotFoundError, match="cifar10: no train data at .*cifar-10-batches-py.*fetch cifar10"):
        load("cifar10", root=tmp_path)
    write_cifar10(tmp_path)  # without the md5 patch: torchvision rejects the fakes as corrupt
    with pytest.raises(FileNotFoundError, match="corrupted"):
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
        D._torchvision_fetch("cifar10", Offline, tmp_path, "cifar-10-batches-py")
    assert [p.name for p in (tmp_path / "cifar-10-batches-py").iterdir()] == ["stale"]  # untouched
    D._torchvision_fetch("cifar10", Fake, tmp_path, "cifar-10-batches-py")
    assert sorted(p.name for p in (tmp_path / "cifar-10-batches-py").iterdir()) == ["data", "test"]
    assert [p.name for p in tmp_path.iterdir()] == ["cifar-10-batches-py"]  # no temporary folders left


def test_download_only_when_asked(tmp_path, monkeypatch):
    monkeypatch.setattr(D, "_torchvision_fetch", lambda *a: pytest.fail("downloaded without download=True"))
    monkeypatch.setattr(D, "_download_bytes", lambda *a, **k: pytest.fail("downloaded without download=True"))
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
    st = D.fetch(["digits", "office31"], root=tmp_path)
    assert st["digits"].startswith("embedded") and "no automatic download for office31: put it at" in st["office31"]
    with pytest.raises(ValueError, match="unknown data set"):
        D.fetch(["nope"])
    assert D.main(["list"]) == 0
    assert D.main(["download", "digits", "--root", str(tmp_path)]) == 0  # the form `make data` uses

    def offline(name, *a):
        raise ConnectionError(f"{name}: download failed (no network)")

    monkeypatch.setattr(D, "_torchvision_fetch", offline)
    assert D.main(["fetch", "mnist", "--root", str(tmp_path)]) == 1
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
