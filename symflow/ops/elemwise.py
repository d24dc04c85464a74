"""Elemwise: a scalar function applied over arrays with Theano's broadcasting rules.

A ScalarOp says what one element does: its NumPy function, its Numba scalar expression, its
dtype rule and its gradient. ``Elemwise(scalar_op)`` lifts it to arrays. The scalar ops
themselves are defined in :mod:`symflow.ops.math`.

Broadcasting follows Theano: inputs are first padded on the left to the same ndim, and a
dimension broadcasts only if its type marks it broadcastable (length 1 known statically).
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .. import dtypes
from ..graph import Apply, Constant, Op, Variable, as_variable
from ..types import TensorType

Vjp = Callable[..., Sequence["Variable | None"]]


class ScalarOp:
    """What an elementwise operation does to one element.

    ``dtype_rule`` is one of ``'upcast'`` (common input dtype), ``'float'`` (common dtype made
    float), ``'bool'`` (comparisons), ``'discrete'`` (bool/int only, e.g. bitwise and) or a
    fixed dtype name (casts). ``numba`` is a Python expression over ``{0}``, ``{1}`` ... that
    the Numba backend inlines into fused loops. ``dtype_inputs`` lists the inputs whose dtypes
    decide the result (``switch`` ignores its condition). ``bools_as`` names the dtype that bool
    inputs are cast to when all the deciding ones are bool, for operations NumPy has no bool loop for
    (``//``, ``%`` and ``**`` give int8).
    """

    def __init__(
        self,
        name: str,
        nin: int,
        impl: Callable[..., np.ndarray],
        numba: str | Callable[[Sequence[str], str], str],
        dtype_rule: str = "upcast",
        dtype_inputs: tuple[int, ...] | None = None,
        commutative: bool = False,
        identity: float | None = None,
        bools_as: str | None = None,
    ) -> None:
        self.name = name
        self.nin = nin
        self.impl = impl
        self.numba = numba
        self.dtype_rule = dtype_rule
        self.dtype_inputs = tuple(range(nin)) if dtype_inputs is None else dtype_inputs
        self.commutative = commutative
        self.identity = identity
        self.bools_as = bools_as  # the dtype bool inputs are computed in, where NumPy has no bool loop
        self.vjp: Vjp | None = None

    def numba_expr(self, args: Sequence[str], in_dtypes: Sequence[str], out_dtype: str) -> str:
        """The Numba scalar expression applied to argument expressions ``args`` (for a ``'float'``
        rule, integer and bool arguments are converted to the result's dtype first)."""
        if self.dtype_rule == "float":
            args = [a if dtypes.is_float(d) else f"np.{out_dtype}({a})" for a, d in zip(args, in_dtypes)]
        template = self.numba(in_dtypes, out_dtype) if callable(self.numba) else self.numba
        return template.format(*args)

    def compute(self, inputs: Sequence[np.ndarray], out_dtype: str) -> np.ndarray:
        """The NumPy result for ``inputs``. A ``'float'`` rule converts integer and bool inputs to the
        result's dtype first: NumPy would compute ``exp`` of int8 in float16, and ``-abs(x)`` of an
        unsigned int wraps around."""
        if self.dtype_rule == "float":
            inputs = [x if x.dtype.kind == "f" else x.astype(out_dtype) for x in map(np.asarray, inputs)]
        return self.impl(*inputs)

    def defvjp(self, fn: Vjp) -> Vjp:
        """Attach the gradient rule ``fn(*inputs, output, g) -> [grad per input]``."""
        self.vjp = fn
        return fn

    def output_dtype(self, input_dtypes: Sequence[str]) -> str:
        ds = [input_dtypes[i] for i in self.dtype_inputs]
        common = dtypes.upcast(*ds)
        rule = self.dtype_rule
        if rule == "upcast":
            return common
        if rule == "float":
            return dtypes.upgrade_to_float(common)
        if rule == "bool":
            return "bool"
        if rule == "discrete":
            if dtypes.is_float(common):
                raise TypeError(f"{self.name} needs bool or integer inputs, got {', '.join(ds)}")
            return common
        return rule  # a fixed dtype

    def __repr__(self) -> str:
        return self.name

    def __reduce__(self) -> tuple[Callable[[str], ScalarOp], tuple[str]]:
        """Pickled by name (its functions are often lambdas): loading gives the op registered under
        that name, so a scalar op of your own must be defined (``scalar_op``) before loading."""
        if _CASTS.get(self.dtype_rule) is self:  # made on first use: the loading process may not have it yet
            return cast_op, (self.dtype_rule,)
        if SCALAR_OPS.get(self.name) is not self:
            raise pickle.PicklingError(f"scalar op {self.name!r} cannot be pickled: it was not defined with "
                                       "scalar_op(), which registers it by name")
        return registered_scalar_op, (self.name,)


#: every scalar op by name (the registry the Numba backend and rewrites look up)
SCALAR_OPS: dict[str, ScalarOp] = {}


def registered_scalar_op(name: str) -> ScalarOp:
    """The scalar op defined under ``name`` (how a pickled graph finds its scalar ops again)."""
    if name not in SCALAR_OPS:
        raise pickle.UnpicklingError(f"the pickled graph uses scalar op {name!r}, which is not defined in this "
                                     "process: define it with scalar_op() before loading")
    return SCALAR_OPS[name]


def scalar_op(name: str, nin: int, impl: Callable[..., np.ndarray], numba: Any, **kwargs: Any) -> ScalarOp:
    """Define and register a scalar op."""
    if name in SCALAR_OPS:
        raise ValueError(f"scalar op {name!r} is already defined")
    op = ScalarOp(name, nin, impl, numba, **kwargs)
    SCALAR_OPS[name] = op
    return op


class Elemwise(Op):
    """Apply ``scalar_op`` element by element to inputs of equal ndim."""

    __props__ = ("scalar_op",)

    def __init__(self, scalar_op: ScalarOp) -> None:
        self.scalar_op = scalar_op

    def __str__(self) -> str:
        return self.scalar_op.name

    def make_node(self, *inputs: Variable) -> Apply:
        sop = self.scalar_op
        if len(inputs) != sop.nin:
            raise TypeError(f"{sop.name} takes {sop.nin} inputs, got {len(inputs)}")
        ndims = {x.ndim for x in inputs}
        if len(ndims) != 1:
            raise TypeError(f"{sop.name}: inputs must have equal ndim here (got {[x.ndim for x in inputs]})")
        out_dtype = sop.output_dtype([x.dtype for x in inputs])
        bcast = tuple(all(bs) for bs in zip(*(x.broadcastable for x in inputs))) if inputs[0].ndim else ()
        return Apply(self, inputs, [TensorType(out_dtype, bcast)])

    def perform(self, node: Apply, inputs: list[np.ndarray]) -> list[np.ndarray]:
        check_broadcast(node, inputs)
        dtype = node.outputs[0].dtype
        return [np.asarray(self.scalar_op.compute(inputs, dtype), dtype=dtype)]

    def grad(self, node: Apply, output_grads: list[Variable | None]) -> list[Variable | None]:
        (g,) = output_grads
        sop = self.scalar_op
        if sop.vjp is None:
            raise NotImplementedError(f"the gradient of {sop.name} is not defined")
        if g is None:
            return [None] * len(node.inputs)
        raw = sop.vjp(*node.inputs, node.outputs[0], g)
        return [
            None if gi is None or dtypes.is_discrete(x.dtype) else reduce_to_input(gi, x)
            for gi, x in zip(raw, node.inputs)
        ]

    numba_reads_elements = True

    def numba_emit(self, node: Apply, cg: Any) -> None:
        """One loop over the output in a generated kernel, reading inputs element by element."""
        from ..compile.numba.codegen import scalar_cast

        out = node.outputs[0]
        in_dtypes = [x.dtype for x in node.inputs]
        if out.ndim == 0:
            args = [cg.elem(x, []) for x in node.inputs]
            expr = self.scalar_op.numba_expr(args, in_dtypes, out.dtype)
            cg.emit(f"{cg.new_name(out)} = {scalar_cast(expr, out.dtype)}")
            return
        dims = cg.broadcast_dims(node, node.inputs, out.ndim)
        name = cg.alloc(out, dims)
        cg.elementwise(name, out.ndim, node.inputs, self.numba_body(node), node=node)

    def numba_body(self, node: Apply) -> Callable[[Any, list[str]], str]:
        """``body(kw, idx)``: the output's element at ``idx`` inside a generated loop kernel."""
        in_dtypes = [x.dtype for x in node.inputs]
        out_dtype = node.outputs[0].dtype

        def body(kw: Any, idx: list[str]) -> str:
            args = []
            for x in node.inputs:
                tmp = kw.fresh("e")
                kw.emit(f"{tmp} = {kw.elem(x, idx)}")
                args.append(tmp)
            return self.scalar_op.numba_expr(args, in_dtypes, out_dtype)

        return body

    def infer_shape(self, node: Apply, input_shapes: list[tuple[Variable, ...]]) -> list[tuple[Variable, ...]]:
        out = []
        for d in range(node.outputs[0].ndim):
            dim = next((s[d] for x, s in zip(node.inputs, input_shapes) if not x.broadcastable[d]), None)
            out.append(dim if dim is not None else as_variable(1, "int64"))
        return [tuple(out)]

    def batch(self, node: Apply, values: list[Variable], batched: list[bool]) -> list[tuple[Variable, bool]] | None:
        """All steps at once: unbatched inputs get a broadcastable leading axis."""
        padded = [v if b else pad_left(v, v.ndim + 1) for v, b in zip(values, batched)]
        return [(self.make_node(*padded).outputs[0], True)]


def check_broadcast(node: Apply, inputs: Sequence[np.ndarray]) -> None:
    """Raise a clear error when non-broadcastable dimensions disagree (Theano's rule)."""
    ndim = node.outputs[0].ndim
    if ndim == 0:
        return
    for d in range(ndim):
        size = -1
        for x, v in zip(node.inputs, inputs):
            if x.broadcastable[d]:
                if v.shape[d] != 1:
                    raise ValueError(
                        f"dimension {d} of input {x.describe()} is broadcastable but has length {v.shape[d]}"
                    )
                continue
            if size == -1:
                size = v.shape[d]
            elif v.shape[d] != size:
                shapes = " and ".join(str(v.shape) for v in inputs)
                message = f"shapes {shapes} do not match in dimension {d} ({size} vs {v.shape[d]})"
                if 1 in (size, v.shape[d]):  # a length-1 dimension that was meant to repeat?
                    from ..shared import SharedVariable

                    shared = any(isinstance(x, SharedVariable) for x in node.inputs)
                    message += (". Only dimensions marked broadcastable broadcast: use T.addbroadcast(x, axis)"
                                + (" or create the shared variable with broadcastable=..." if shared else "")
                                + " if a length-1 dimension should repeat")
                raise ValueError(message)


def reduce_to_input(g: Variable, x: Variable) -> Variable:
    """Sum a gradient over the dimensions ``x`` was broadcast along, and give it x's dtype."""
    from .reduce import sum as sum_

    axes = tuple(d for d in range(x.ndim) if x.broadcastable[d] and not g.broadcastable[d])
    if axes:
        g = sum_(g, axis=axes, keepdims=True)
    if g.dtype != x.dtype:
        g = elemwise(cast_op(x.dtype), g)
    return g


# ---------------------------------------------------------------------------------------------
# building elementwise expressions from Python values
# ---------------------------------------------------------------------------------------------


def elemwise(sop: ScalarOp, *args: Any) -> Variable:
    """Apply ``sop`` to variables, arrays or Python numbers, with Theano dtype and ndim rules."""
    strong: list[Variable | None] = []
    for a in args:
        if isinstance(a, Variable):
            strong.append(a)
        elif dtypes.is_weak(a):
            strong.append(None)
        else:
            strong.append(as_variable(a))
    deciding = [s.dtype for i, s in enumerate(strong) if s is not None and i in sop.dtype_inputs]
    strong_dtype = dtypes.upcast(*deciding) if deciding else None
    weak_values = [a for i, (a, s) in enumerate(zip(args, strong)) if s is None and i in sop.dtype_inputs]
    weak_dtype = dtypes.resolve_weak(strong_dtype, weak_values)
    if weak_dtype == "bool" and sop.bools_as is not None:  # NumPy computes //, % and ** of bools in int8
        strong = [None if s is None else cast(s, sop.bools_as) if s.dtype == "bool" else s for s in strong]
        weak_dtype = sop.bools_as
    inputs: list[Variable] = []
    for a, s in zip(args, strong):
        if s is not None:
            inputs.append(s)
        elif dtypes.fits(a, weak_dtype):
            inputs.append(Constant(a, dtype=weak_dtype))
        else:
            inputs.append(Constant(a))
    ndim = max(x.ndim for x in inputs)
    inputs = [pad_left(x, ndim) for x in inputs]
    return Elemwise(sop).make_node(*inputs).outputs[0]


def pad_left(x: Variable, ndim: int) -> Variable:
    """Prepend broadcastable dimensions so that ``x`` has ``ndim`` dimensions."""
    if x.ndim == ndim:
        return x
    if isinstance(x, Constant):
        return Constant(x.data.reshape((1,) * (ndim - x.ndim) + x.data.shape), dtype=x.dtype)
    from .shape import dimshuffle

    return dimshuffle(x, ("x",) * (ndim - x.ndim) + tuple(range(x.ndim)))


_CASTS: dict[str, ScalarOp] = {}


def cast_op(dtype: str) -> ScalarOp:
    """The scalar op converting to ``dtype`` (one per dtype)."""
    dtype = dtypes.as_dtype(dtype)
    if dtype not in _CASTS:
        numba_types = {"bool": "bool"}
        conv = numba_types.get(dtype, f"np.{dtype}")
        op = scalar_op(f"cast_{dtype}", 1, lambda x, _d=dtype: x.astype(_d), f"{conv}({{0}})", dtype_rule=dtype)

        @op.defvjp
        def _cast_vjp(x: Variable, out: Variable, g: Variable) -> list[Variable | None]:
            return [None if dtypes.is_discrete(x.dtype) else elemwise(cast_op(x.dtype), g)]

        _CASTS[dtype] = op
    return _CASTS[dtype]


def cast(x: Any, dtype: Any) -> Variable:
    """``x`` converted to ``dtype`` (``x.astype(dtype)``); a no-op when it already has it."""
    x = as_variable(x)
    dtype = dtypes.as_dtype(dtype)
    if x.dtype == dtype:
        return x
    return elemwise(cast_op(dtype), x)


# ---------------------------------------------------------------------------------------------
# fused elementwise programs (built by the ``fusion`` rewrite)
# ---------------------------------------------------------------------------------------------
class Composite:
    """A scalar program: steps applying scalar ops to inputs and earlier steps.

    A reference ``r`` names input ``r`` when ``r < n_inputs``, else step ``r - n_inputs``.
    """

    def __init__(self, input_dtypes: tuple[str, ...], steps: tuple[tuple[str, tuple[int, ...], str], ...],
                 output: int) -> None:
        self.input_dtypes = input_dtypes
        self.steps = steps
        self.output = output

    def _key(self) -> tuple[Any, ...]:
        return (self.input_dtypes, self.steps, self.output)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Composite) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def dtype_of(self, ref: int) -> str:
        n = len(self.input_dtypes)
        return self.input_dtypes[ref] if ref < n else self.steps[ref - n][2]

    def __str__(self) -> str:
        n = len(self.input_dtypes)

        def text(ref: int) -> str:
            if ref < n:
                return f"i{ref}"
            name, args, _ = self.steps[ref - n]
            return f"{name}({', '.join(text(a) for a in args)})"

        return text(self.output)


class FusedElemwise(Op):
    """Several elementwise operations computed in one loop (one pass over memory)."""

    __props__ = ("composite",)
    numba_reads_elements = True

    def __init__(self, composite: Composite) -> None:
        self.composite = composite

    def __str__(self) -> str:
        return f"Fused{{{self.composite}}}"

    def make_node(self, *inputs: Variable) -> Apply:
        c = self.composite
        if len(inputs) != len(c.input_dtypes) or len({x.ndim for x in inputs}) != 1:
            raise TypeError(f"{self}: expected {len(c.input_dtypes)} inputs of equal ndim")
        for x, d in zip(inputs, c.input_dtypes):
            if x.dtype != d:
                raise TypeError(f"{self}: input {x.describe()} should have dtype {d}")
        bcast = tuple(all(bs) for bs in zip(*(x.broadcastable for x in inputs))) if inputs[0].ndim else ()
        return Apply(self, inputs, [TensorType(c.dtype_of(c.output), bcast)])

    def perform(self, node: Apply, inputs: list[np.ndarray]) -> list[np.ndarray]:
        check_broadcast(node, inputs)
        values: list[np.ndarray] = list(inputs)
        for name, args, dtype in self.composite.steps:
            values.append(np.asarray(SCALAR_OPS[name].compute([values[a] for a in args], dtype), dtype=dtype))
        return [np.asarray(values[self.composite.output], dtype=node.outputs[0].dtype)]

    def grad(self, node: Apply, output_grads: list[Variable | None]) -> list[Variable | None]:
        raise NotImplementedError("fused operations exist only in rewritten graphs, after gradients are built")

    infer_shape = Elemwise.infer_shape

    def numba_emit(self, node: Apply, cg: Any) -> None:
        out = node.outputs[0]
        if out.ndim == 0:
            cg.bind(out, self._program(node, lambda x: cg.elem(x, []), cg.emit, cg.fresh))
            return
        dims = cg.broadcast_dims(node, node.inputs, out.ndim)
        name = cg.alloc(out, dims)
        cg.elementwise(name, out.ndim, node.inputs, self.numba_body(node), node=node)

    def numba_body(self, node: Apply) -> Callable[[Any, list[str]], str]:
        """``body(kw, idx)``: the output's element at ``idx`` inside a generated loop kernel."""
        return lambda kw, idx: self._program(node, lambda x: kw.elem(x, idx), kw.emit, kw.fresh)

    def _program(self, node: Apply, elem: Callable[[Variable], str], emit: Callable[[str], None],
                 fresh: Callable[[str], str]) -> str:
        """Emit the composite's steps on the inputs' elements; returns the output's name."""
        from ..compile.numba.codegen import scalar_cast

        c = self.composite
        names = []
        for x in node.inputs:
            name = fresh("e")
            emit(f"{name} = {elem(x)}")
            names.append(name)
        for op_name, args, dtype in c.steps:
            sop = SCALAR_OPS[op_name]
            expr = sop.numba_expr([names[a] for a in args], [c.dtype_of(a) for a in args], dtype)
            name = fresh("s")
            emit(f"{name} = {scalar_cast(expr, dtype)}")
            names.append(name)
        return names[c.output]

    def batch(self, node: Apply, values: list[Variable], batched: list[bool]) -> list[tuple[Variable, bool]] | None:
        """All steps at once: unbatched inputs get a broadcastable leading axis."""
        padded = [v if b else pad_left(v, v.ndim + 1) for v, b in zip(values, batched)]
        return [(self.make_node(*padded).outputs[0], True)]
