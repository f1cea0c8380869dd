"""Notebook 08's functions of repalign.recipes.zoo: per-seed splits, scores over per-seed test sets, the pairs of a
"pre-trained network against each baseline" verdict and the roles of targets and networks."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from repalign.recipes import zoo
from repalign.run import claims


def _rows(x: np.ndarray) -> set[bytes]:
    """Each image as bytes, to compare sets of images."""
    flat = np.ascontiguousarray(np.asarray(x).reshape(len(x), -1))
    return {row.tobytes() for row in flat}


def test_on_lfw_each_seed_splits_all_200_patches_anew_into_disjoint_balanced_parts() -> None:
    pytest.importorskip("skimage")
    splits, described = zoo.draw_seeded_splits(["lfw_faces"], [0, 1, 2], n_train_per_class=60, n_test_per_class=40,
                                               test_seed=1000)  # fmt: skip
    draws = splits["lfw_faces"]
    assert len(draws) == 3
    for train, test in draws:
        assert np.bincount(train.y).tolist() == [60, 60] and np.bincount(test.y).tolist() == [40, 40]
        assert not _rows(train.x) & _rows(test.x) and len(_rows(train.x) | _rows(test.x)) == 200
    assert len({frozenset(_rows(train.x)) for train, _ in draws}) == 3, "every seed draws its own split"
    assert set(described) == {"lfw_faces train", "lfw_faces test"}
    assert all("each seed draws its own" in text for text in described.values())
    again, _ = zoo.draw_seeded_splits(["lfw_faces"], [2], n_train_per_class=60, n_test_per_class=40, test_seed=1000)
    np.testing.assert_array_equal(again["lfw_faces"][0][1].x, draws[2][1].x)  # a seed's draw ignores the others


def test_with_an_official_split_each_seed_tests_on_its_own_draw_of_the_test_split() -> None:
    splits, _ = zoo.draw_seeded_splits(["fashion_mnist_embedded"], [0, 1], n_train_per_class=5, n_test_per_class=3,
                                       test_seed=7)  # fmt: skip
    (train0, test0), (train1, test1) = splits["fashion_mnist_embedded"]
    assert [len(t) for t in (train0, test0, train1, test1)] == [50, 30, 50, 30]
    assert np.bincount(test0.y).tolist() == [3] * 10 and np.bincount(train1.y).tolist() == [5] * 10
    assert "test" in test0.info.split and "train" in train0.info.split
    assert not np.array_equal(test0.meta["source_index"], test1.meta["source_index"])
    assert not np.array_equal(train0.meta["source_index"], train1.meta["source_index"])


def test_scores_over_seeds_read_each_seeds_probe_on_its_own_test_set() -> None:
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 20)
    readable = np.eye(2)[y] * 3.0 + 0.1 * rng.normal(size=(40, 2))
    reps = [{"readable": (readable, readable), "noise": (rng.normal(size=(40, 3)), rng.normal(size=(40, 3)))}] * 2
    trains = [SimpleNamespace(y=y)] * 2
    flipped = SimpleNamespace(y=1 - y)  # the same test features with every label wrong
    own = zoo.scores_over_seeds(reps, trains, [SimpleNamespace(y=y), flipped], [0, 1], gd_steps=10, loss_level=0.5)
    assert own.probe_accuracy["readable"].tolist() == [1.0, 0.0]
    shared = zoo.scores_over_seeds(reps, trains, SimpleNamespace(y=y), [0, 1], gd_steps=10, loss_level=0.5)
    assert shared.probe_accuracy["readable"].tolist() == [1.0, 1.0]
    np.testing.assert_array_equal(own.auc["noise"], shared.auc["noise"])  # alignment is read on the training draw
    with pytest.raises(ValueError):
        zoo.scores_over_seeds(reps, trains, [flipped], [0, 1], gd_steps=10, loss_level=0.5)  # one test per seed


def test_versus_sets_each_network_against_each_baseline_in_an_all_more_verdict() -> None:
    values = {
        "net": np.array([0.5, 0.6, 0.55]),
        "pixels": np.array([0.1, 0.12, 0.11]),
        "hog": np.array([0.7, 0.8, 0.75]),
    }
    pairs = [("net", "pixels"), ("net", "hog")]
    mine, theirs = zoo.versus(values, pairs)
    assert list(mine) == list(theirs) == ["net vs pixels", "net vs hog"]
    np.testing.assert_array_equal(mine["net vs hog"], values["net"])
    np.testing.assert_array_equal(theirs["net vs hog"], values["hog"])
    assert claims.all_more("beats pixels", *zoo.versus(values, pairs[:1])).outcome == claims.HOLDS
    verdict = claims.all_more("beats each", mine, theirs)
    assert verdict.outcome == claims.FAILS and "not_holding_net vs hog" in verdict.evidence
    fewer, more = zoo.versus(values, pairs)[::-1]  # "fewer steps": the baseline's value above the network's
    assert claims.all_more("fewer", fewer, more).outcome == claims.FAILS


def test_roles_name_the_contrast_the_stand_ins_and_the_papers_own() -> None:
    infos = {"lfw_faces": SimpleNamespace(is_standin=True), "cifar10": SimpleNamespace(is_standin=False),
             "mnist_embedded": SimpleNamespace(is_standin=False)}  # fmt: skip
    roles = zoo.target_roles(infos, ["mnist_embedded"])
    assert "contrast" in roles["mnist_embedded"] and "not the paper's claim" in roles["mnist_embedded"]
    assert "stand-in" in roles["lfw_faces"] and roles["cifar10"] == "the paper's data"
    nets = zoo.network_roles(["efficientnet_lite0", "resnet50"])
    assert nets["resnet50"] == "the paper's" and nets["efficientnet_lite0"].startswith("stand-in")
    assert zoo.random_init_name("resnet50") == "resnet50 (random init)"
