"""Transferability scores: checked by properties (more in tests/test_properties.py), by the published algorithms' own
equations, by small cases worked by hand, and against one value per score from its published implementation (the only
golden numbers here, each with its source: repository, file, commit)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import multivariate_normal

from repalign import AlignmentAccumulator, one_hot_targets, one_vs_rest_targets, spectrum
from repalign.measure import scores


def _task(n: int = 120, d: int = 6, classes: int = 3, signal: float = 2.0, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    x = rng.normal(size=(n, d))
    x[:, :classes] += signal * np.eye(classes)[y]
    return x, y


def _dense_log_evidence(f: np.ndarray, y: np.ndarray, alpha: float, beta: float) -> float:
    """log N(y; 0, I/beta + F F^T/alpha): the marginal likelihood of Bayesian linear regression, directly."""
    cov = np.eye(len(y)) / beta + f @ f.T / alpha
    return float(multivariate_normal(mean=np.zeros(len(y)), cov=cov).logpdf(y))


# ------------------------------------------------------------------------------------------------------- LogME
@pytest.mark.parametrize(("n", "d"), [(40, 5), (12, 20)])
def test_logme_evidence_is_the_marginal_likelihood_at_a_stationary_point(n: int, d: int) -> None:
    rng = np.random.default_rng(1)
    f = rng.normal(size=(n, d))
    y = f @ rng.normal(size=d) + 0.5 * rng.normal(size=n)
    y -= y.mean()
    spec = spectrum(f, y, bias=False, normalize=False, center=False, method="svd")
    ev, alpha, beta = scores.logme_evidence(
        spec.singular_values**2, spec.mass_columns[:, 0], float(y @ y), n, d, eps=0.0, tol=1e-13, max_iter=100_000
    )
    # the returned evidence is the Gaussian marginal likelihood at (alpha, beta), also when n < d (rank n) ...
    assert ev == pytest.approx(_dense_log_evidence(f, y, alpha, beta) / n, rel=1e-9, abs=1e-9)
    if n < d:  # y lies in the column space: the evidence grows without bound in beta, no interior fixed point
        return
    # ... at MacKay's fixed point: alpha |m|^2 = gamma and beta |y - F m|^2 = n - gamma, with m the posterior mean
    a_mat = alpha * np.eye(d) + beta * f.T @ f
    m = beta * np.linalg.solve(a_mat, f.T @ y)
    gamma = float(np.sum(beta * np.linalg.eigvalsh(f.T @ f) / (alpha + beta * np.linalg.eigvalsh(f.T @ f))))
    assert alpha * (m @ m) == pytest.approx(gamma, rel=1e-7)
    assert beta * np.sum((y - f @ m) ** 2) == pytest.approx(n - gamma, rel=1e-7)
    # ... which maximises it: moving alpha or beta lowers the marginal likelihood
    best = _dense_log_evidence(f, y, alpha, beta)
    for da, db in [(1.2, 1), (1 / 1.2, 1), (1, 1.2), (1, 1 / 1.2)]:
        assert _dense_log_evidence(f, y, alpha * da, beta * db) < best


@pytest.mark.filterwarnings("ignore:center=False")  # 0/1 indicators uncentred, as the reference LogME has them
def test_logme_is_the_mean_over_classes_of_the_evidence_of_each_indicator() -> None:
    x, y = _task()
    per_class = []
    for c in range(3):
        t = (y == c).astype(float)
        spec = spectrum(x, t, bias=False, normalize=False, center=False, method="svd")
        per_class.append(scores.logme_evidence(spec.singular_values**2, spec.mass, t @ t, len(y), x.shape[1])[0])
    assert scores.logme(x, y) == pytest.approx(np.mean(per_class), rel=1e-10)


def test_logme_is_invariant_to_rotations_and_to_relabelling() -> None:
    x, y = _task(d=8)
    q, _ = np.linalg.qr(np.random.default_rng(3).normal(size=(8, 8)))
    fixed = {"eps": 0.0, "tol": 1e-12, "max_iter": 10_000}
    assert scores.logme(x @ q, y, **fixed) == pytest.approx(scores.logme(x, y, **fixed), rel=1e-8)
    assert scores.logme(x, np.array(["c", "a", "b"])[y], **fixed) == pytest.approx(scores.logme(x, y, **fixed))


def test_logme_ranks_informative_features_above_noise() -> None:
    x, y = _task(signal=3.0)
    noise = np.random.default_rng(5).normal(size=x.shape)
    assert scores.logme(x, y) > scores.logme(noise, y)
    assert scores.score_card(x, y)["logme_preprocessed"] > scores.score_card(noise, y)["logme_preprocessed"]


def test_score_card_streams_to_the_same_numbers_and_matches_the_separate_scores() -> None:
    x, y = _task(n=150, d=10, classes=4)
    card = scores.score_card(x, y)
    acc = AlignmentAccumulator()
    for rows in np.array_split(np.arange(150), 4):
        acc.update(x[rows], one_hot_targets(y, classes=range(4))[rows])
    streamed = scores.card_from_spectrum(acc.spectrum(), np.bincount(y))
    for key, value in card.items():
        assert streamed[key] == pytest.approx(value, rel=1e-8, abs=1e-12), key
    spec = spectrum(x, one_vs_rest_targets(y))  # ±1 targets: the same relative curve
    assert card["alignment_auc"] == pytest.approx(spec.auc(), rel=1e-10)
    assert card["alignment_tau_0.9"] == pytest.approx(spec.tau_q(0.9), rel=1e-10)
    assert scores.alignment_score(x, y, "auc_sigma1") == pytest.approx(card["alignment_auc_sigma1"])


def test_score_card_on_a_torch_tensor_matches_numpy() -> None:
    torch = pytest.importorskip("torch")
    x, y = _task()
    a, b = scores.score_card(x, y), scores.score_card(torch.from_numpy(x), torch.from_numpy(y))
    assert a == pytest.approx(b, rel=1e-8)


def test_alignment_summaries_are_ordered_and_bounded() -> None:
    x, y = _task(n=200, d=12)
    s = scores.alignment_summaries(spectrum(x, one_hot_targets(y)))
    assert 0 <= s["auc"] <= s["auc_sigma1"] <= 1
    assert s["tau_0.9"] <= s["tau_0.5"]
    assert set(s) == set(scores.SUMMARIES)


# ----------------------------------------------------------------------------------------------------- H-score
def _class_mean_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.stack([x[y == c].mean(axis=0) for c in y])


def test_h_score_equals_its_trace_form_computed_naively_and_ignores_invertible_maps() -> None:
    x, y = _task(n=90, d=5)
    naive = np.trace(np.linalg.pinv(np.cov(x, rowvar=False)) @ np.cov(_class_mean_rows(x, y), rowvar=False))
    assert scores.h_score(x, y) == pytest.approx(naive, rel=1e-9)
    a = np.random.default_rng(2).normal(size=(5, 5))  # invertible with probability one
    assert scores.h_score(x @ a + 7.0, y) == pytest.approx(naive, rel=1e-7)


def test_h_score_lies_in_0_to_c_minus_1_and_saturates_when_features_outnumber_examples() -> None:
    x, y = _task(n=90, d=5)
    assert 0 <= scores.h_score(x, y) <= 2
    wide = np.random.default_rng(4).normal(size=(30, 40))
    assert scores.h_score(wide, np.arange(30) % 3) == pytest.approx(2.0, rel=1e-8)


def test_regularized_h_score_is_the_shrunk_trace_and_at_most_the_h_score() -> None:
    from sklearn.covariance import LedoitWolf

    x, y = _task(n=60, d=8)
    lw = LedoitWolf().fit(x)
    g = _class_mean_rows(x, y)
    naive = np.trace(np.linalg.inv(lw.covariance_) @ ((1 - lw.shrinkage_) * np.cov(g, rowvar=False, bias=True)))
    assert scores.regularized_h_score(x, y) == pytest.approx(naive, rel=1e-9)
    assert scores.regularized_h_score(x, y) <= scores.h_score(x, y) + 1e-12


# ------------------------------------------------------------------------------------------------- NCE and LEEP
def test_nce_by_hand() -> None:
    # z = 0 holds one example of each target class: H(Y|z=0) = log 2; z = 1 determines y: 0. P(z=0) = 1/2.
    assert scores.nce([0, 0, 1, 1], [0, 1, 1, 1]) == pytest.approx(-0.5 * math.log(2))
    assert scores.nce([5, 5, 9, 9], ["a", "a", "b", "b"]) == 0.0
    probs = np.array([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8], [0.3, 0.7]])  # argmax gives z = [0, 0, 1, 1]
    assert scores.nce(probs, [0, 1, 1, 1]) == pytest.approx(-0.5 * math.log(2))
    # a source label independent of the target: -H(Y) = -log 2 for balanced binary labels
    assert scores.nce([0, 1, 0, 1], [0, 0, 1, 1]) == pytest.approx(-math.log(2))


def test_leep_of_a_perfect_source_is_zero_and_a_small_case_by_hand() -> None:
    y = np.array([0, 0, 1, 2, 2, 2])
    perfect = np.eye(4)[[3, 3, 0, 1, 1, 1]]  # each source class maps to one target class
    assert scores.leep(perfect, y) == pytest.approx(0.0, abs=1e-12)
    # two examples, two source classes: theta rows (0.5, 0.5) and (1, 0), labels (0, 1)
    theta = np.array([[0.5, 0.5], [1.0, 0.0]])
    # P(y,z) = [[.25, .25], [.5, 0]] -> P(y|z=0) = (1/3, 2/3), P(y|z=1) = (1, 0)
    eep = [0.5 * (1 / 3) + 0.5 * 1.0, 1.0 * (2 / 3)]
    assert scores.leep(theta, [0, 1]) == pytest.approx(np.mean(np.log(eep)))
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(5), size=40)
    labels = rng.integers(0, 3, 40)
    assert scores.leep(probs, labels) <= 0
    assert scores.leep(probs[:, ::-1], labels) == pytest.approx(scores.leep(probs, labels))  # source order is free


# ---------------------------------------------------------------------------------------------------- TransRate
def _naive_rate(z: np.ndarray, eps: float) -> float:
    n, d = z.shape
    return 0.5 * np.linalg.slogdet(np.eye(d) + z.T @ z / (n * eps))[1]


@pytest.mark.parametrize(("n", "d"), [(60, 8), (20, 45)])  # the Gram and the kernel (Woodbury) paths
def test_regularized_h_score_matches_scikit_learn_ledoit_wolf_on_both_paths(n: int, d: int) -> None:
    from sklearn.covariance import LedoitWolf

    x, y = _task(n=n, d=d)
    lw = LedoitWolf().fit(x)
    between = np.cov(_class_mean_rows(x, y), rowvar=False, bias=True)
    naive = np.trace(np.linalg.inv(lw.covariance_) @ ((1 - lw.shrinkage_) * between))
    assert scores.regularized_h_score(x, y) == pytest.approx(naive, rel=1e-8)


def test_h_score_kernel_path_equals_the_naive_pseudo_inverse() -> None:
    x, y = _task(n=20, d=45)
    cov = np.cov(x, rowvar=False, bias=True)
    naive = np.trace(
        np.linalg.pinv(cov, rcond=1e-10, hermitian=True) @ np.cov(_class_mean_rows(x, y), rowvar=False, bias=True)
    )
    assert scores.h_score(x, y) == pytest.approx(naive, rel=1e-7)


@pytest.mark.parametrize("d", [4, 30])  # d < n_c and d > n (the kernel path)
def test_transrate_equals_the_coding_rate_difference_computed_naively(d: int) -> None:
    x, y = _task(n=24, d=d)
    z = x - x.mean(axis=0)
    naive = _naive_rate(z, 1e-4) - np.mean([_naive_rate(z[y == c], 1e-4) for c in range(3)])
    assert scores.transrate(x, y) == pytest.approx(naive, rel=1e-9)
    perm = np.random.default_rng(1).permutation(24)
    assert scores.transrate(x[perm], y[perm]) == pytest.approx(naive, rel=1e-9)


def test_every_feature_score_ranks_separated_classes_above_noise() -> None:
    x, y = _task(n=150, d=6, signal=4.0)
    noise = np.random.default_rng(9).normal(size=x.shape)
    fns = (
        scores.logme,
        scores.h_score,
        scores.regularized_h_score,
        scores.transrate,
        scores.sfda,
        scores.alignment_score,
    )
    for fn in fns:
        assert fn(x, y) > fn(noise, y), fn.__name__


# --------------------------------------------------------------------------------------------------------- SFDA
def _naive_sfda(x: np.ndarray, y: np.ndarray) -> float:
    """The published algorithm step by step with dense d x d matrices and a generalised eigenproblem."""
    from scipy.linalg import eigh

    classes = np.unique(y)
    n, d = x.shape

    def posterior(z, lam):
        means = np.stack([z[y == c].mean(axis=0) for c in classes])
        priors = np.array([np.mean(y == c) for c in classes])
        sw = sum(p * np.cov(z[y == c], rowvar=False, bias=True) for p, c in zip(priors, classes, strict=True))
        if lam is None:
            lam = max(np.exp(-5 * np.linalg.eigvalsh(sw)[-1]), 1e-10)
        sw_shrunk = (1 - lam) * sw + lam * np.trace(sw) / d * np.eye(d)
        st = np.cov(z, rowvar=False, bias=True)
        _, vecs = eigh(st - sw_shrunk, sw_shrunk)  # Fisher directions, V^T S~_W V = I
        coef = means @ vecs @ vecs.T
        logits = z @ coef.T - 0.5 * np.diag(means @ coef.T) + np.log(priors)
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True), lam, means

    prob, lam, means = posterior(x, None)
    soft = np.exp(prob) / np.exp(prob).sum(axis=1, keepdims=True)
    mixed = x.copy()
    for i, c in enumerate(classes):
        q = soft[y == c, i][:, None]
        mixed[y == c] = q * x[y == c] + (1 - q) * np.delete(means, i, axis=0).mean(axis=0)
    prob, _, _ = posterior(mixed, lam)
    return float(np.mean(prob[np.arange(n), np.searchsorted(classes, y)]))


@pytest.mark.parametrize(("n", "d", "scale"), [(90, 6, 1.0), (90, 6, 0.05), (24, 40, 0.05)])  # Gram and kernel paths
def test_sfda_equals_the_published_algorithm_computed_naively(n: int, d: int, scale: float) -> None:
    x, y = _task(n=n, d=d, signal=1.5)
    assert scores.sfda(scale * x, y) == pytest.approx(_naive_sfda(scale * x, y), rel=1e-6)
    assert 0 < scores.sfda(scale * x, y) <= 1


# ---------------------------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "fn",
    [
        scores.logme,
        scores.logme_published_code,
        scores.h_score,
        scores.regularized_h_score,
        scores.transrate,
        scores.alignment_score,
        scores.score_card,
        scores.ridge_scores,
        scores.feature_scores,
    ],
)
def test_bad_input_is_refused_with_a_clear_error(fn) -> None:
    x, y = _task(n=30, d=4)
    with pytest.raises(ValueError, match="2-D"):
        fn(x[:, 0], y)
    with pytest.raises(ValueError, match="30 rows but labels have 29"):
        fn(x, y[:-1])
    with pytest.raises(ValueError, match="single class"):
        fn(x, np.zeros(30))
    bad = x.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        fn(bad, y)


def test_source_scores_refuse_what_is_not_probabilities_or_labels() -> None:
    y = np.array([0, 1, 0, 1])
    with pytest.raises(ValueError, match="probabilities"):
        scores.leep(np.array([[2.0, -1.0]] * 4), y)
    with pytest.raises(ValueError, match="rows but labels"):
        scores.leep(np.full((3, 2), 0.5), y)
    with pytest.raises(ValueError, match="single class"):
        scores.nce([0, 1, 0, 1], [1, 1, 1, 1])
    with pytest.raises(ValueError, match="NaN"):
        scores.nce([0.0, np.nan, 1.0, 0.0], y)
    with pytest.raises(ValueError, match="unknown summary"):
        scores.alignment_score(np.eye(4), y, "auc_typo")


def test_score_card_on_cuda_matches_the_cpu() -> None:
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    x, y = _task(n=300, d=20, classes=4)
    on_gpu = scores.score_card(torch.from_numpy(x).float().cuda(), torch.from_numpy(y).cuda())
    on_cpu = scores.score_card(x.astype(np.float32), y)
    assert on_gpu == pytest.approx(on_cpu, rel=1e-6, abs=1e-9)


def test_sfda_with_full_shrinkage_on_tiny_features_and_on_constant_features() -> None:
    x, y = _task(n=20, d=40)
    tiny = 1e-12 * x  # lambda = exp(-5 * ~1e-24) = 1: S~_W is the scaled identity, on the kernel path too
    assert 0 < scores.sfda(tiny, y) <= 1
    y4 = np.array([0, 0, 0, 0, 0, 0, 1, 1, 2, 3])  # constant features: the posterior is the prior, mean pi_{y_i}
    priors = np.bincount(y4) / y4.size
    for d in (3, 30):
        assert scores.sfda(np.ones((10, d)), y4) == pytest.approx(np.mean(priors[y4]))


# ------------------------------------------------------------------------------------- published implementations
# One value per score from its published code, run once (outside this repository: their code is not ours to ship) on
# the seeded problem below: n = 60 examples > d = 8 features (where the published LogME code and the paper's formula
# agree; for d > n see the transcription of its fixed point below), 3 balanced classes, and a 5-class source model's
# probabilities for LEEP and NCE.
LOGME_REPO = "thuml/LogME @ 56551ca94a3295bcc37e6a01b1291911af985f07"
TLLIB_REPO = "thuml/Transfer-Learning-Library @ c4aa59eb565650a552b809411601d0589efbbfe4"
SFDA_REPO = "TencentARC/SFDA @ 3b7edf76bd682acb1eba4f4c5eb7ea7f3f7f6c59"


def _published_problem() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The problem the published implementations were run on (features (60, 8), labels (60,), probs (60, 5))."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 8))
    y = np.arange(60) % 3
    x[:, :3] += 1.5 * np.eye(3)[y]
    logits = x @ rng.normal(size=(8, 5))
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    return x, y, probs


def test_logme_and_its_published_code_form_match_thuml_logme() -> None:
    """LogME.py ``LogME(regression=False).fit(x, y)`` (the fixed-point ``_fit_fixed_point``; numba's ``njit``
    replaced by the identity to run it) = -0.6370774795850472. Its last evidence uses the new (α, β) with m² and
    ‖y − Fm‖² of the previous t; repalign re-evaluates them at the new t (the evidence at the last (α, β) exactly).
    Both stop once t moves by ≤ 1e-3 relative, and the difference is second order in that move: 4.5e-10 here (their
    code with the moments recomputed agrees to 7e-16)."""
    x, y, _ = _published_problem()
    assert scores.logme(x, y) == pytest.approx(-0.6370774795850472, rel=1e-8), LOGME_REPO
    assert scores.logme_published_code(x, y) == pytest.approx(-0.6370774795850472, rel=1e-14), LOGME_REPO


def test_leep_and_nce_match_thuml_logme() -> None:
    """LEEP.py ``LEEP(probs, y)`` = -0.7496505793505261; NCE.py ``NCE(probs.argmax(1), y)`` = -0.664080555559215
    (its 1e-20 inside the logarithm is far below double rounding here). Identical to the last bit on this problem."""
    x, y, probs = _published_problem()
    assert scores.leep(probs, y) == pytest.approx(-0.7496505793505261, rel=1e-12), LOGME_REPO
    assert scores.nce(probs.argmax(axis=1), y) == pytest.approx(-0.664080555559215, rel=1e-12), LOGME_REPO
    assert scores.nce(probs, y) == pytest.approx(-0.664080555559215, rel=1e-12)  # (n, Z) probabilities: argmax taken


def test_h_scores_and_transrate_match_tllib_ranking() -> None:
    """tllib/ranking/hscore.py ``h_score`` = 1.1615573842484173 and ``regularized_h_score`` = 0.11542819721801689;
    tllib/ranking/transrate.py ``transrate`` = 0.9784988853625407. tllib's regularised H-score takes the between-class
    covariance with ``np.cov`` (divisor n − 1) beside scikit-learn's Ledoit–Wolf covariance (divisor n); repalign uses
    divisor n for both (its docstring), so tllib's value is repalign's × n/(n − 1), the same factor for every
    representation of a task. Agreement: 2e-16, 6e-14 and 7e-15 relative."""
    x, y, _ = _published_problem()
    n = len(y)
    assert scores.h_score(x, y) == pytest.approx(1.1615573842484173, rel=1e-10), TLLIB_REPO
    assert scores.regularized_h_score(x, y) * n / (n - 1) == pytest.approx(0.11542819721801689, rel=1e-10), TLLIB_REPO
    assert scores.transrate(x, y) == pytest.approx(0.9784988853625407, rel=1e-10), TLLIB_REPO


def test_sfda_matches_the_authors_code() -> None:
    """metrics.py ``SFDA_Score(3 * x, y)`` = 0.5986227050040113, identical here. The authors estimate λ_max(S_W)
    with three power iterations (utils.py ``iterative_A``), repalign exactly; at 3·x, λ_max ≈ 14.9 and the shrinkage
    max(e^{−5λ}, 1e-10) is 1e-10 either way. At x itself (λ_max = 1.6594, their estimate 1.6516: shrinkage 2.49e-4
    against 2.59e-4) SFDA moves by 1.6e-6 relative: their ``SFDA_Score(x, y)`` = 0.5985971383042265 (with an exact
    λ_max their code gives repalign's value to the last bit)."""
    x, y, _ = _published_problem()
    assert scores.sfda(3.0 * x, y) == pytest.approx(0.5986227050040113, rel=1e-12), SFDA_REPO
    assert scores.sfda(x, y) == pytest.approx(0.5985971383042265, rel=1e-5), SFDA_REPO


# ------------------------------------------------------------------------------------------- edge cases found by #19
# regularized_h_score with one feature: Ledoit–Wolf's δ = ‖S − μI‖² is 0 up to rounding, so the shrinkage came out
# 0 or 1 by chance (1 zeroes the score); scikit-learn (and tllib through it) returns shrinkage 0 for d = 1.
def test_regularized_h_score_of_one_feature_is_the_h_score() -> None:
    rng = np.random.default_rng(0)
    y = np.array([0, 1, 0, 1, 2, 2])
    for shift in np.linspace(-5.0, 5.0, 11):
        x = rng.normal(size=(6, 1)) + shift
        assert scores.regularized_h_score(x, y) == pytest.approx(scores.h_score(x, y), rel=1e-9)


# logme_evidence with eps=0 and no signal: ‖m‖² underflowed to 0.0 and the division raised before the documented
# "keep the last finite pair" check.
def test_logme_without_epsilon_on_features_without_signal_keeps_the_last_finite_pair() -> None:
    x = np.array([[0.00640423], [0.001049], [-0.00535669], [0.00361595]])
    value = scores.logme(x, np.array([0, 1, 0, 1]), eps=0.0, tol=1e-12, max_iter=100_000)
    assert math.isfinite(value)


# ------------------------------------------------------------------------------ LogME as the published code has it
def _published_logme(f: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """A transcription of thuml/LogME's ``LogME._fit_fixed_point`` (``LogME.py`` @ 56551ca, unchanged since 3a08950;
    classification; numba's ``njit`` of ``truncated_svd`` left out): the score and each class's α. Its ``sigma`` has
    min(n, d) entries when n ≤ d, so ``log(alpha + beta * sigma)`` misses (d − n) log α: thuml/LogME issue #23."""
    n, d = f.shape
    if n > d:  # truncated_svd
        _, s, vh = np.linalg.svd(f.T @ f)
        s = np.sqrt(s)
        k = int(np.sum(s > 1e-10))
        s, u = s[:k].reshape(-1, 1), (f @ vh.T)[:, :k] / s[:k].reshape(1, -1)
    else:
        u, s, _ = np.linalg.svd(f, full_matrices=False)
        s = s.reshape(-1, 1)
    sigma = s**2
    evidences, alphas = [], []
    for c in range(int(y.max()) + 1):
        y_ = (y == c).astype(np.float64).reshape(-1, 1)
        x2 = (u.T @ y_) ** 2
        res_x2 = (y_**2).sum() - x2.sum()
        alpha, beta = 1.0, 1.0
        for _ in range(11):
            t = alpha / beta
            gamma = (sigma / (sigma + t)).sum()
            m2 = (sigma * x2 / ((t + sigma) ** 2)).sum()
            res2 = (x2 / ((1 + sigma / t) ** 2)).sum() + res_x2
            alpha = gamma / (m2 + 1e-5)
            beta = (n - gamma) / (res2 + 1e-5)
            if abs(alpha / beta - t) / t <= 1e-3:
                break
        evidence = (d / 2.0 * np.log(alpha) + n / 2.0 * np.log(beta) - 0.5 * np.sum(np.log(alpha + beta * sigma))
                    - beta / 2.0 * res2 - alpha / 2.0 * m2 - n / 2.0 * np.log(2 * np.pi))  # fmt: skip
        evidences.append(evidence / n)
        alphas.append(alpha)
    return float(np.mean(evidences)), np.array(alphas)


@pytest.mark.parametrize(("n", "d"), [(60, 8), (300, 50), (40, 40), (40, 200), (25, 600)])
def test_logme_published_code_equals_a_transcription_of_its_fixed_point(n: int, d: int) -> None:
    x, y = _task(n=n, d=d, signal=1.5, seed=n + d)
    assert scores.logme_published_code(x, y) == pytest.approx(_published_logme(x, y)[0], rel=1e-10, abs=1e-12)


def test_logme_published_code_follows_the_code_on_rank_deficient_wide_data() -> None:
    """n > d with all-zero columns (dead ReLU units): the code keeps the Gram's singular values above 1e-10, which
    for the zero directions is rounding noise; repalign reads them the same way (``published_code_terms``)."""
    rng = np.random.default_rng(3)
    for _ in range(3):
        x = np.maximum(rng.normal(size=(200, 40)) - 2.5, 0.0)
        y = np.arange(200) % 3
        assert (x == 0).all(axis=0).any()
        assert scores.logme_published_code(x, y) == pytest.approx(_published_logme(x, y)[0], rel=1e-10, abs=1e-12)


def test_logme_agrees_with_the_published_code_when_examples_outnumber_features() -> None:
    for n, d, seed in [(60, 8, 0), (300, 50, 1), (500, 20, 2)]:
        x, y = _task(n=n, d=d, signal=1.5, seed=seed)
        assert abs(scores.logme(x, y) - _published_logme(x, y)[0]) < 1e-6  # the code's stale last moments only


def test_the_published_code_drops_d_minus_n_log_alpha_which_moves_with_alpha() -> None:
    """d > n: published − paper = (d − n)/(2n) · mean_c log α_c, plus the code's stale last moments (second order
    in the last move of t, which 11 updates leave at 0.2 % of the gap here at scale 0.05): not a constant shift for
    a fixed n and d, since α is fitted per representation and class."""
    n, d = 30, 120
    gaps = []
    for seed, scale in [(0, 1.0), (1, 0.05), (2, 20.0)]:
        x, y = _task(n=n, d=d, signal=2.0, seed=seed)
        published, alphas = _published_logme(scale * x, y)
        gap = published - scores.logme(scale * x, y)
        assert gap == pytest.approx((d - n) / (2 * n) * np.mean(np.log(alphas)), rel=5e-3)  # 2e-3 at scale 0.05
        gaps.append(gap)
    assert np.ptp(gaps) > 1.0  # the same n and d, shifts that differ by nats per example


# ------------------------------------------------------------------------------------- ridge model selection
def _ridge_problem(standardize: bool, n: int, d: int):
    x, y = _task(n=n, d=d, classes=3, signal=1.0, seed=n * d)
    phi = scores.standardise_columns(x) if standardize else scores.preprocess(x)
    onehot = np.eye(3)[y]
    return x, y, phi, onehot, onehot - onehot.mean(axis=0)


@pytest.mark.parametrize("standardize", [False, True])
@pytest.mark.parametrize(("n", "d"), [(40, 6), (20, 45)])  # the Gram and the kernel paths of ridge_basis
def test_gcv_ridge_is_the_dense_generalised_cross_validation(standardize: bool, n: int, d: int) -> None:
    x, y, phi, _, yc = _ridge_problem(standardize, n, d)
    sig = np.linalg.svd(phi, compute_uv=False)
    risks = []
    for lam in scores.ridge_penalties(sig[sig > 1e-10 * sig[0]], n):
        hat = phi @ np.linalg.solve(phi.T @ phi + lam * np.eye(phi.shape[1]), phi.T)
        trace = np.trace(hat) + (1.0 if standardize else 0.0)  # centring fits an intercept: one more parameter
        risks.append(np.sum((yc - hat @ yc) ** 2) / n / (1 - trace / n) ** 2)
    dense = 1 - min(risks) / (np.sum(yc**2) / n)
    key = "gcv_ridge_standardised" if standardize else "gcv_ridge"
    assert scores.ridge_scores(x, y, standardize=standardize)[key] == pytest.approx(dense, rel=1e-8)
    if not standardize:  # a pure function of the measure's own spectrum: the score card reads it from there
        assert scores.score_card(x, y)["gcv_ridge"] == pytest.approx(dense, rel=1e-8)


@pytest.mark.parametrize("standardize", [False, True])
@pytest.mark.parametrize(("n", "d"), [(30, 6), (18, 40)])
def test_loo_ridge_scores_equal_refitting_without_each_example(standardize: bool, n: int, d: int) -> None:
    """Ridge refitted n times, each time without one example (with its own intercept on standardised features; on
    the measure's preprocessing the targets centred once, as the measure has them): the best squared error and the
    best accuracy over the penalties equal the closed forms from σ, U and the leverages."""
    x, y, phi, onehot, yc = _ridge_problem(standardize, n, d)
    sig, u = scores.ridge_basis(x, standardize=standardize)
    errors, accuracies = [], []
    for lam in scores.ridge_penalties(sig, n):
        err, hits = 0.0, 0
        for j in range(n):
            keep = np.arange(n) != j
            a, t = phi[keep], (onehot if standardize else yc)[keep]
            shift_a, shift_t = (a.mean(axis=0), t.mean(axis=0)) if standardize else (0.0, 0.0)
            w = np.linalg.solve(
                (a - shift_a).T @ (a - shift_a) + lam * np.eye(a.shape[1]), (a - shift_a).T @ (t - shift_t)
            )
            pred = (phi[j] - shift_a) @ w + shift_t + (0.0 if standardize else onehot.mean(axis=0))
            err += np.sum((onehot[j] - pred) ** 2)
            hits += int(np.argmax(pred) == y[j])
        errors.append(err / np.sum(yc**2))
        accuracies.append(hits / n)
    got = scores.ridge_scores(x, y, standardize=standardize)
    suffix = "_standardised" if standardize else ""
    assert got["loo_ridge_error" + suffix] == pytest.approx(1 - min(errors), rel=1e-8)
    assert got["loo_ridge_accuracy" + suffix] == max(accuracies)
    assert scores.loo_ridge_error(sig, u, y, intercept=standardize) == got["loo_ridge_error" + suffix]
    assert scores.loo_ridge_accuracy(sig, u, y, intercept=standardize) == got["loo_ridge_accuracy" + suffix]


@pytest.mark.parametrize("standardize", [False, True])
@pytest.mark.parametrize(("n", "d"), [(50, 7), (12, 30)])
def test_ridge_basis_is_a_thin_svd_of_the_preprocessed_features(standardize: bool, n: int, d: int) -> None:
    x, _ = _task(n=n, d=d)
    phi = scores.standardise_columns(x) if standardize else scores.preprocess(x)
    sig, u = scores.ridge_basis(x, standardize=standardize)
    assert u.T @ u == pytest.approx(np.eye(sig.size), abs=1e-9)
    assert (u * sig**2) @ u.T == pytest.approx(phi @ phi.T, abs=1e-9)
    if standardize:  # centred columns: the constant direction is outside their span (the intercept's)
        assert np.abs(u.sum(axis=0)).max() < 1e-8


def test_spectral_scores_rank_separated_classes_above_noise_and_stay_in_their_bounds() -> None:
    x, y = _task(n=150, d=6, signal=4.0)
    noise = np.random.default_rng(9).normal(size=x.shape)
    for standardize in (False, True):
        good, bad = (
            scores.ridge_scores(x, y, standardize=standardize),
            scores.ridge_scores(noise, y, standardize=standardize),
        )
        for key, value in good.items():
            assert value > bad[key], key
            assert value <= 1.0 and bad[key] <= 1.0
    with pytest.raises(ValueError, match="one positive singular value per column"):
        scores.loo_ridge_error(np.ones(3), np.ones((10, 2)), np.arange(10) % 2)


def test_feature_scores_hold_both_logmes_and_every_ridge_score() -> None:
    x, y = _task(n=24, d=40)
    values = scores.feature_scores(x, y)
    ridge = {f"{s}{p}" for p in ("", "_standardised") for s in ("gcv_ridge", "loo_ridge_error", "loo_ridge_accuracy")}
    assert ridge | {"logme", "logme_published_code", "logme_preprocessed"} <= set(values)
    assert values["logme"] == pytest.approx(scores.logme(x, y), rel=1e-12)
    assert values["logme_published_code"] == pytest.approx(_published_logme(x, y)[0], rel=1e-10)
    assert abs(values["logme_published_code"] - values["logme"]) > 0.1  # d > n: the two differ


def test_transrate_is_finite_on_features_with_a_huge_scale() -> None:
    """Before, an LU log-determinant of I + ZZ^T/(n eps) lost the identity when the kernel was huge and singular
    (two identical examples in a class, features ~1e5) and TransRate came out -inf (make rehearsal hit it on a random
    ResNet-152); the rate from the eigenvalues stays finite, and equals the log-determinant where that is exact."""
    rng = np.random.default_rng(0)
    x = np.repeat(rng.standard_normal((5, 2048)) * 1e5, 2, axis=0)  # each class: two identical examples
    labels = np.repeat(np.arange(5), 2)
    assert np.isfinite(scores.transrate(x, labels))
    z = rng.standard_normal((30, 4))
    y = np.repeat(np.arange(3), 10)
    zc = z - z.mean(0)

    def rate(a: np.ndarray) -> float:
        return 0.5 * np.linalg.slogdet(np.eye(4) + a.T @ a / (len(a) * 1e-4))[1]

    exact = rate(zc) - np.mean([rate(zc[y == c]) for c in range(3)])
    assert scores.transrate(z, y) == pytest.approx(exact, rel=1e-10)
