"""symflow.testing: verify_grad accepts right gradients and names the worst element of a wrong
one; the hypothesis strategies generate what they promise."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import symflow.tensor as T
from symflow.graph import Apply, Op, Variable, as_variable
from symflow.testing import ATOL, EPS, RTOL, GradientError, verify_grad
from symflow.testing import strategies as sst


class CubeWithWrongGradient(Op):
    """``x ** 3`` whose gradient is wrong at flat position ``bad`` only (``3 x^2 + 1`` there)."""

    __props__ = ("bad",)

    def __init__(self, bad: int) -> None:
        self.bad = bad

    def make_node(self, x: Any) -> Apply:
        x = as_variable(x)
        return Apply(self, [x], [x.type])

    def perform(self, node: Apply, inputs: list[np.ndarray]) -> list[np.ndarray]:
        return [inputs[0] ** 3]

    def grad(self, node: Apply, output_grads: list[Variable | None]) -> list[Variable | None]:
        (x,) = node.inputs
        (g,) = output_grads
        flat_index = T.arange(x.size).reshape(x.shape)
        return [g * (3 * x ** 2 + T.eq(flat_index, self.bad))]

    def infer_shape(self, node: Apply, input_shapes: list[tuple[Variable, ...]]) -> list[tuple[Variable, ...]]:
        return [input_shapes[0]]


def _cube(bad: int) -> CubeWithWrongGradient:
    return CubeWithWrongGradient(bad)


def test_right_gradients_pass(mode: str) -> None:
    x = np.array([[0.5, -1.0, 2.0], [1.5, 0.3, -0.7]])
    verify_grad(lambda a: a ** 3, [x], mode=mode)
    verify_grad(lambda a, b: T.tanh(a).dot(b), [x, x.T], mode=mode)
    verify_grad(lambda a: a.sum(), [x.astype("float32")], mode=mode)


@pytest.mark.parametrize("bad", [0, 4])
def test_wrong_gradient_names_the_worst_element(mode: str, bad: int) -> None:
    x = np.array([[0.5, -1.0, 2.0], [1.5, 0.3, -0.7]])
    with pytest.raises(GradientError) as info:
        verify_grad(_cube(bad), [x], mode=mode)
    message = str(info.value)
    worst = np.unravel_index(bad, x.shape)
    assert f"gradient of input 0 (dtype float64, shape (2, 3)) is wrong at index {tuple(int(i) for i in worst)}" \
        in message
    symbolic = float(re.search(r"symbolic np.float64\(([^)]*)\)", message).group(1))
    numeric = float(re.search(r"finite differences np.float64\(([^)]*)\)", message).group(1))
    assert abs(symbolic - numeric) > 0.4  # off by the projection of the deliberate error
    assert "eps=1e-06" in message and "rtol=0.0001" in message
    assert isinstance(info.value, AssertionError)  # pytest reports it as a failed check


def test_names_the_input(mode: str) -> None:
    x, y = np.array([0.5, 1.0]), np.array([2.0, 3.0])
    with pytest.raises(GradientError, match="gradient of input 1 "):
        verify_grad(lambda a, b: a * _cube(1)(b), [x, y], mode=mode)


def test_options(mode: str) -> None:
    x = np.array([1.0, 2.0])
    with pytest.raises(GradientError):
        verify_grad(_cube(0), [x], mode=mode)
    verify_grad(_cube(0), [x], mode=mode, atol=10.0)  # a loose tolerance accepts it
    i = np.array([1, 0])
    verify_grad(lambda a, idx: a[idx] ** 2, [x, i], wrt=[0], mode=mode)
    with pytest.raises(TypeError, match="exclude it with wrt="):
        verify_grad(lambda a, idx: a[idx] ** 2, [x, i], mode=mode)
    assert EPS["float32"] > EPS["float64"] and RTOL["float32"] > RTOL["float64"] and ATOL["float32"] > ATOL["float64"]


def test_large_unrelated_outputs_do_not_spoil_precision(mode: str) -> None:
    """Finite differences are taken output by output, so huge values elsewhere cost nothing."""
    verify_grad(lambda a, b: T.concatenate([T.exp(a) * 1e12, T.tanh(b) * 1e-3]),
                [np.array([20.0, 21.0]), np.array([0.3, -0.2])], mode=mode)


# ---------------------------------------------------------------------------------------------
# strategies
# ---------------------------------------------------------------------------------------------
@given(shape=sst.shapes(min_dims=1, max_dims=3, min_side=2, max_side=4))
def test_shapes(shape: tuple[int, ...]) -> None:
    assert 1 <= len(shape) <= 3 and all(2 <= s <= 4 for s in shape)


@given(a=sst.arrays("float32", (3, 2), low=0.1, high=2.0, avoid=[1.0], margin=0.2))
def test_arrays_respect_dtype_range_and_avoid(a: np.ndarray) -> None:
    assert a.dtype == np.float32 and a.shape == (3, 2)
    b = a.astype("float64")
    assert np.all((b >= 0.1) & (b <= 2.0)) and np.all(np.abs(b - 1.0) > 0.2)


@given(a=sst.arrays("float64", sst.shapes(max_dims=2), avoid=list(range(-3, 4)), margin=0.1))
def test_arrays_avoiding_many_points(a: np.ndarray) -> None:
    assert np.all(np.abs(a - np.round(a)) > 0.1) and np.all(np.abs(a) <= 3.0)


@given(a=sst.arrays("int32", (4,), -2, 5))
def test_integer_arrays(a: np.ndarray) -> None:
    assert a.dtype == np.int32 and np.all((a >= -2) & (a <= 5))


def test_impossible_avoid_is_refused() -> None:
    with pytest.raises(ValueError, match="away from"):
        sst.arrays("float64", (2,), 0.0, 0.1, avoid=[0.05], margin=0.1)


@given(w=sst.well_conditioned(shape=(5,)), p=sst.positive("float32", (5,)))
def test_well_conditioned_and_positive(w: np.ndarray, p: np.ndarray) -> None:
    assert np.all((np.abs(w) > 0.1) & (np.abs(w) <= 2.0))
    assert p.dtype == np.float32 and np.all(p.astype("float64") >= 0.1) and np.all(p <= 3.0)


@given(shapes=sst.broadcastable_shapes(n=3, max_dims=3))
def test_broadcastable_shapes(shapes: list[tuple[int, ...]]) -> None:
    assert len(shapes) == 3
    np.broadcast_shapes(*shapes)  # raises if they do not broadcast together


@given(arrays=sst.same_shape_arrays(3, shape=(2, 3)), more=sst.same_shape_arrays(2))
def test_same_shape_arrays(arrays: tuple[np.ndarray, ...], more: tuple[np.ndarray, ...]) -> None:
    assert len(arrays) == 3 and all(a.shape == (2, 3) for a in arrays)
    assert more[0].shape == more[1].shape
    assert all(np.all(np.abs(a) <= 2.0) for a in arrays)


@given(data=st.data())
def test_strategies_feed_verify_grad(mode: str, data: st.DataObject) -> None:
    x = data.draw(sst.well_conditioned(shape=sst.shapes(2, 2, min_side=2)))
    verify_grad(T.tanh, [x], mode=mode)
