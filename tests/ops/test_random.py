"""RandomStreams: distributions roughly right with fixed seeds, fresh numbers on each call, the
same seed giving the same numbers, and streams inside scan advancing every step."""

from __future__ import annotations

import numpy as np
import pytest

import symflow as sf
import symflow.tensor as T

N = 4000


def test_distributions(mode: str) -> None:
    srng = sf.RandomStreams(seed=42)
    draws = {
        "uniform": srng.uniform((N,)),
        "uniform range": srng.uniform((N,), low=-2.0, high=4.0),
        "normal": srng.normal((N,)),
        "normal avg std": srng.normal((N,), avg=2.0, std=3.0),
        "binomial p": srng.binomial((N,), p=0.3),
        "binomial n": srng.binomial((N,), n=5, p=0.3),
        "choice": srng.choice((N,), a=4),
        "choice p": srng.choice((N,), a=3, p=[0.2, 0.3, 0.5]),
        "choice of values": srng.choice((N,), a=np.array([10, 20, 30])),
        "random_integers": srng.random_integers((N,), low=2, high=5),
    }
    out = dict(zip(draws, sf.function([], list(draws.values()), mode=mode)(), strict=True))
    u = out["uniform"]
    assert u.dtype == np.float64 and u.shape == (N,) and u.min() >= 0 and u.max() < 1
    assert abs(u.mean() - 0.5) < 0.03 and abs(u.std() - np.sqrt(1 / 12)) < 0.02
    r = out["uniform range"]
    assert r.min() >= -2 and r.max() < 4 and abs(r.mean() - 1.0) < 0.15
    z = out["normal"]
    assert abs(z.mean()) < 0.06 and abs(z.std() - 1) < 0.05
    assert abs(np.mean(np.abs(z) < 1) - 0.6827) < 0.03
    w = out["normal avg std"]
    assert abs(w.mean() - 2) < 0.2 and abs(w.std() - 3) < 0.15
    b = out["binomial p"]
    assert b.dtype == np.int64 and set(np.unique(b)) <= {0, 1} and abs(b.mean() - 0.3) < 0.03
    b5 = out["binomial n"]
    assert b5.min() >= 0 and b5.max() <= 5 and abs(b5.mean() - 1.5) < 0.08 and abs(b5.var() - 1.05) < 0.1
    np.testing.assert_allclose(np.bincount(out["choice"], minlength=4) / N, [0.25] * 4, atol=0.03)
    np.testing.assert_allclose(np.bincount(out["choice p"], minlength=3) / N, [0.2, 0.3, 0.5], atol=0.03)
    assert set(np.unique(out["choice of values"])) == {10, 20, 30}
    assert set(np.unique(out["random_integers"])) == {2, 3, 4, 5}


def test_dtypes_and_symbolic_sizes(mode: str) -> None:
    srng = sf.RandomStreams(seed=1)
    n = T.iscalar("n")
    x = T.matrix("x")
    outputs = [srng.uniform((2, 2), dtype="float32"), srng.normal((n, 2)), srng.uniform(x.shape),
               srng.binomial((3,), p=0.5, dtype="int8"), srng.normal(())]
    assert [o.dtype for o in outputs] == ["float32", "float64", "float64", "int8", "float64"]
    results = sf.function([n, x], outputs, mode=mode)(3, np.zeros((4, 5)))
    assert [r.shape for r in results] == [(2, 2), (3, 2), (4, 5), (3,), ()]
    assert results[0].dtype == np.float32 and results[3].dtype == np.int8
    with pytest.raises(TypeError, match="float"):
        srng.uniform((2,), dtype="int32")
    with pytest.raises(NotImplementedError, match="replace"):
        srng.choice((2,), a=3, replace=False)


def test_fresh_numbers_on_every_call(mode: str) -> None:
    srng = sf.RandomStreams(seed=7)
    f = sf.function([], [srng.uniform((5,)), srng.normal((5,))], mode=mode)
    first, second = f(), f()
    assert not np.array_equal(first[0], second[0]) and not np.array_equal(first[1], second[1])
    assert not np.array_equal(first[0], first[1])  # streams are independent


def test_same_seed_same_numbers(mode: str) -> None:
    def draws(seed: int) -> list[np.ndarray]:
        srng = sf.RandomStreams(seed=seed)
        f = sf.function([], [srng.uniform((5,)), srng.normal((3,))], mode=mode)
        return f() + f()

    a, b, c = draws(3), draws(3), draws(4)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[0], c[0])


def test_reseeding_restarts_streams(mode: str) -> None:
    srng = sf.RandomStreams(seed=5)
    f = sf.function([], srng.uniform((4,)), mode=mode)
    first = f()
    f()
    srng.seed(5)
    np.testing.assert_array_equal(f(), first)


def test_functions_sharing_a_stream_advance_it(mode: str) -> None:
    srng = sf.RandomStreams(seed=9)
    u = srng.uniform((4,))
    f, g = sf.function([], u, mode=mode), sf.function([], u * 1.0, mode=mode)
    a, b = f(), g()
    assert not np.array_equal(a, b)
    h = sf.function([], u, mode=mode, no_default_updates=True)  # does not advance the state
    np.testing.assert_array_equal(h(), h())


def test_dropout_mask(mode: str) -> None:
    srng = sf.RandomStreams(seed=11)
    x = T.matrix("x")
    mask = srng.binomial(x.shape, p=0.8, dtype="float64")
    out = sf.function([x], x * mask / 0.8, mode=mode)(np.ones((50, 40)))
    assert set(np.unique(out)) == {0.0, 1.25}
    assert abs(out.mean() - 1.0) < 0.05


def test_streams_inside_scan_advance_each_step(mode: str) -> None:
    srng = sf.RandomStreams(seed=1)
    noise, updates = sf.scan(lambda: srng.uniform((3,)), n_steps=4)
    f = sf.function([], noise, updates=updates, mode=mode)
    first = f()
    assert first.shape == (4, 3)
    assert len({tuple(row) for row in first}) == 4  # a new draw at every step
    second = f()
    assert not np.array_equal(first, second)  # and the state carries over between calls
    g = sf.function([], noise, mode=mode)  # the default update applies without explicit updates
    assert not np.array_equal(g(), g())


def test_scan_with_noise_in_the_recurrence(mode: str) -> None:
    srng = sf.RandomStreams(seed=2)
    walk, updates = sf.scan(lambda prev: prev + srng.normal((2,)), outputs_info=T.zeros((2,)), n_steps=200)
    out = sf.function([], walk, updates=updates, mode=mode)()
    steps = np.diff(out, axis=0)
    assert abs(steps.mean()) < 0.15 and abs(steps.std() - 1) < 0.12
    assert len(np.unique(steps[:, 0])) == len(steps)
