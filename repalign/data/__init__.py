"""Data: where examples come from (sources, one module per family) and how a figure's task is cut from them.

One entry point, :func:`load`, returns a :class:`Dataset` (arrays + :class:`DatasetInfo` metadata)::

    >>> from repalign import data
    >>> ds = data.load("digits")                  # ships with scikit-learn, offline
    >>> ds.x.shape, ds.y.shape, ds.info.task
    ((1797, 1, 8, 8), (1797,), 'multiclass')

Each data set has a :class:`Source` (:func:`source`, :func:`sources`), registered in :mod:`repalign.data.base`
by the module that loads it: :mod:`~repalign.data.embedded` (real subsets that ship inside the package),
:mod:`~repalign.data.bundled` (data inside scikit-learn and scikit-image), :mod:`~repalign.data.torchvision`
(MNIST, Fashion-MNIST, CIFAR-10/100; downloadable), :mod:`~repalign.data.uci` (CT Position; downloadable),
:mod:`~repalign.data.folders` (Office-31, ImageNet; put in place by hand) and :mod:`~repalign.data.generated`
(peaks, a CT-like regression, rendered domains). A source says what kind it is (:data:`SOURCE_KINDS`), where it
reads (``source("cifar10").where()``) and whether its data are in place without loading them
(``source("cifar10").check()``: None, or the message naming the path and the fix); ``repalign paper-check`` and
``python -m repalign.data fetch`` (:mod:`~repalign.data.download`) ask it. A new data set is one loader and one
:func:`register` call; nothing else needs to know its name.

Tasks are cut by :mod:`~repalign.data.splits` (classes, subsamples, train/test splits), :mod:`~repalign.data.prepare`
(targets, scaling, transfer pairs) and :mod:`~repalign.data.peaks` (Caruana's 120 peaks tasks). Everything public
is re-exported here, so ``data.load``, ``data.prepare_task`` and ``data.peaks_targets`` all work.
"""

from repalign.data import bundled, embedded, folders, generated, torchvision, uci  # noqa: F401  (they register)
from repalign.data.base import (
    COVERAGES,
    DATA_ROOT_TOKENS,
    SOURCE_KINDS,
    Dataset,
    DatasetInfo,
    Source,
    available,
    data_root,
    load,
    register,
    resolve_path,
    source,
    sources,
)
from repalign.data.download import EMBEDDED, fetch
from repalign.data.embedded import FASHION_MNIST_CLASSES, embedded_checksums
from repalign.data.folders import (
    OFFICE31_CLASSES,
    OFFICE31_DOMAINS,
    OFFICE31_SIZES,
    image_folder,
    imagenet_split_table,
    imagenet_wnids,
    load_image,
)
from repalign.data.generated import DIGITS_DOMAINS, FASHION_DOMAINS
from repalign.data.peaks import (
    PEAKS_VARIABLES,
    peaks_encode,
    peaks_relatedness,
    peaks_stratified_targets,
    peaks_targets,
    peaks_task,
    peaks_task_id,
    peaks_task_name,
    peaks_tasks,
    peaks_tasks_by_relatedness,
)
from repalign.data.prepare import (
    TransferPair,
    class_split,
    class_targets,
    domain_transfer_pair,
    imagenet_cifar_pair,
    misalign_inputs,
    peaks_transfer_pair,
    prepare_task,
    rescale_targets,
    whiten_inputs,
)
from repalign.data.splits import binary_pair, class_subset, shuffle_labels, split_per_class, subsample, train_test_split
from repalign.data.torchvision import CIFAR10_CLASSES, CIFAR10_SPLIT
from repalign.data.uci import CT_URL

__all__ = [
    "COVERAGES", "EMBEDDED", "Dataset", "DatasetInfo", "available", "data_root", "load", "fetch", "SOURCE_KINDS",
    "Source", "register", "source", "sources", "DATA_ROOT_TOKENS", "resolve_path",
    "FASHION_MNIST_CLASSES", "embedded_checksums", "OFFICE31_CLASSES", "OFFICE31_DOMAINS", "OFFICE31_SIZES",
    "image_folder", "imagenet_split_table", "imagenet_wnids", "load_image", "DIGITS_DOMAINS", "FASHION_DOMAINS",
    "CIFAR10_SPLIT", "CIFAR10_CLASSES",
    "CT_URL", "PEAKS_VARIABLES", "peaks_encode", "peaks_relatedness", "peaks_stratified_targets", "peaks_targets",
    "peaks_task", "peaks_task_id", "peaks_task_name", "peaks_tasks", "peaks_tasks_by_relatedness", "TransferPair",
    "class_split", "class_targets", "domain_transfer_pair", "imagenet_cifar_pair", "misalign_inputs",
    "peaks_transfer_pair", "prepare_task", "rescale_targets", "whiten_inputs", "binary_pair", "class_subset",
    "shuffle_labels", "split_per_class", "subsample", "train_test_split",
]  # fmt: skip
