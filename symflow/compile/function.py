"""``symflow.function``: turn a graph into a callable that checks its inputs, computes outputs,
and applies updates to shared variables.

The pipeline is: collect the graph (outputs, updates, givens, default updates) into a
FunctionGraph, run the rewrites, then hand it to a backend (``'numba'`` or ``'py'``).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from .. import dtypes
from ..config import config
from ..errors import InputError, MissingInputError, UnusedInputError, describe_value
from ..graph import Constant, Variable, as_variable, built_at, clone_replace, graph_inputs
from ..ops.elemwise import cast
from ..shared import SharedVariable
from .fgraph import FunctionGraph

_NO_DEFAULT = object()


class In:
    """An input with options: ``In(x, value=0.1, name='lr')`` gives a default value."""

    def __init__(self, variable: Variable, name: str | None = None, value: Any = _NO_DEFAULT) -> None:
        if not isinstance(variable, Variable):
            raise TypeError(f"In() takes a symbolic variable, got {type(variable).__name__}")
        self.variable = variable
        self.name = name or variable.name
        self.value = value


class InputSpec:
    """What one argument of a compiled function must be, and how to convert a value to it."""

    def __init__(self, variable: Variable, name: str | None, default: Any, position: int, fn_name: str) -> None:
        self.variable = variable
        self.name = name
        self.position = position
        self.fn_name = fn_name
        self.dtype = np.dtype(variable.dtype)
        self.ndim = variable.ndim
        self.bcast_dims = tuple(d for d, b in enumerate(variable.broadcastable) if b)
        self.default = default

    def label(self) -> str:
        where = f" of {self.fn_name}" if self.fn_name else ""
        name = f" '{self.name}'" if self.name else ""
        return f"argument {self.position}{name}{where} ({self.variable.type.describe()})"

    def convert(self, value: Any, allow_downcast: bool | None) -> np.ndarray:
        if type(value) is np.ndarray and value.dtype == self.dtype and value.ndim == self.ndim:
            array = value
        else:
            array = self._convert_slow(value, allow_downcast)
        for d in self.bcast_dims:
            if array.shape[d] != 1:
                raise InputError(f"{self.label()}: dimension {d} is broadcastable and must have length 1; "
                                 f"got shape {array.shape}{self._origin()}")
        return array

    def _origin(self) -> str:
        loc = self.variable.location
        return f"\n  (the input was created at {loc})" if loc else ""

    def _convert_slow(self, value: Any, allow_downcast: bool | None) -> np.ndarray:
        target = self.dtype.name
        if isinstance(value, Variable):
            raise InputError(f"{self.label()}: got the symbolic variable {value.describe()}; pass a value "
                             "(a NumPy array or number), or use givens= to substitute variables")
        if isinstance(value, np.ndarray):
            array = dtypes.as_plain_array(value, self.label(), InputError, self._origin())
            if array.dtype != self.dtype:
                if array.dtype.name not in dtypes.ALL:
                    raise InputError(f"{self.label()}: got a {describe_value(array)}, dtype not supported")
                if not np.can_cast(array.dtype, self.dtype, "safe") and not allow_downcast:
                    raise InputError(
                        f"{self.label()}: got a {describe_value(array)}; converting {array.dtype.name} to "
                        f"{target} could lose information. Pass allow_input_downcast=True to "
                        f"symflow.function, or convert the value with .astype('{target}'){self._origin()}"
                    )
                array = array.astype(self.dtype)
        else:
            raw = dtypes.as_plain_array(value, self.label(), InputError, self._origin())
            if raw.dtype == object or raw.dtype.kind not in "biuf":
                raise InputError(f"{self.label()}: cannot use {type(value).__name__} {value!r} as a number array")
            with np.errstate(all="ignore"):  # a lossy cast is reported below
                array = raw.astype(self.dtype)
            # Python floats are weak (any float input takes them, rounded); other values must convert exactly
            weak_float = dtypes.is_float(target) and raw.dtype.kind == "f" and not isinstance(value, np.generic)
            if weak_float and not allow_downcast and dtypes.overflows(raw, array):
                raise InputError(f"{self.label()}: the value {value!r} overflows {target}" + self._origin())
            if not allow_downcast and not weak_float and not np.array_equal(array, raw):
                raise InputError(f"{self.label()}: the value {value!r} does not fit {target} exactly; "
                                 "pass allow_input_downcast=True to allow rounding" + self._origin())
        if array.ndim != self.ndim:
            dims = "1 dimension" if self.ndim == 1 else f"{self.ndim} dimensions"
            raise InputError(f"{self.label()}: expected {dims}, got {describe_value(array)}" + self._origin())
        return array


class Function:
    """A compiled symbolic function. Call it with values for its inputs (positionally or by name).

    ``f.trust_input = True`` skips input checking (the caller promises exact dtypes and ndims).
    """

    def __init__(self, fgraph: FunctionGraph, specs: list[InputSpec], return_list: bool,
                 allow_downcast: bool | None, mode: str, name: str | None, built: FunctionGraph | None = None
                 ) -> None:
        self.fgraph = fgraph
        #: the graph as built, before rewrites (``printing.pydotprint`` draws it)
        self.fgraph_before_rewrites = fgraph if built is None else built
        self.specs = specs
        self.by_name = {s.name: s.position for s in specs if s.name}
        self.return_list = return_list
        self.allow_downcast = allow_downcast
        self.mode = mode
        self.name = name
        self.trust_input = False
        self._fast: Any = None  # a call path for exact arrays, from the Numba backend
        self.source: str | None = None  # the generated code, for mode='numba'
        self.n_outputs = len(fgraph.outputs)
        self.update_targets = [sv for sv, _ in fgraph.updates]
        self.shared_inputs = fgraph.shared_inputs
        if mode == "py":
            from .py_backend import PyProgram

            self._program = PyProgram(fgraph.inputs + fgraph.shared_inputs, fgraph.outputs + fgraph.update_values)
            self._run = self._run_py
        else:
            from .numba.backend import compile_numba

            self._run = compile_numba(fgraph, self)
            fast_call = getattr(self._run, "fast_call", None)
            if fast_call is not None:  # exact arrays go straight to the compiled code
                self._fast = fast_call(specs, return_list, self._call)
                # Python finds ``__call__`` on the class: a class of this function's own makes the
                # fast call the only Python frame of a call (0.1 µs less than calling it from here)
                self.__class__ = type(type(self).__name__, (type(self),), {"__call__": staticmethod(self._fast)})

    # -- calling -----------------------------------------------------------------------------
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._call(*args, **kwargs)

    def _call(self, *args: Any, **kwargs: Any) -> Any:
        """The general call: bind and convert the arguments, run, unpack."""
        values = self._arguments(args, kwargs)
        outputs = self._run(values)
        if self.return_list:
            return outputs
        return outputs[0] if outputs else None

    def _arguments(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[Any]:
        specs = self.specs
        if kwargs or len(args) != len(specs):
            args = self._bind(args, kwargs)
        if self.trust_input:
            return list(args)
        allow = self.allow_downcast
        return [spec.convert(v, allow) for spec, v in zip(specs, args)]

    def _bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
        specs = self.specs
        if len(args) > len(specs):
            raise TypeError(f"{self._title()} takes {len(specs)} arguments, got {len(args)}")
        values: list[Any] = list(args) + [_NO_DEFAULT] * (len(specs) - len(args))
        for key, v in kwargs.items():
            if key not in self.by_name:
                known = ", ".join(repr(s.name) for s in specs if s.name) or "none"
                raise TypeError(f"{self._title()} has no input named {key!r} (named inputs: {known})")
            pos = self.by_name[key]
            if values[pos] is not _NO_DEFAULT:
                raise TypeError(f"{self._title()} got two values for input {key!r}")
            values[pos] = v
        for i, v in enumerate(values):
            if v is _NO_DEFAULT:
                if specs[i].default is _NO_DEFAULT:
                    raise TypeError(f"{self._title()} is missing {specs[i].label()}")
                values[i] = specs[i].default
        return tuple(values)

    def _title(self) -> str:
        return f"function {self.name!r}" if self.name else "the function"

    def _run_py(self, values: list[Any]) -> list[Any]:
        shared_values = [sv._value for sv in self.shared_inputs]
        with np.errstate(all="ignore"):
            results = self._program.run(values + shared_values)
        outputs = results[: self.n_outputs]
        fresh = _own(results[self.n_outputs:], values + shared_values)
        for sv, v in zip(self.update_targets, fresh):
            sv._value = v
        return _own(outputs, values + shared_values + fresh)

    # -- pickling ------------------------------------------------------------------------------
    def __reduce__(self) -> tuple[Callable[..., Function], tuple[Any, ...]]:
        """Pickled as its graphs (shared variables with their values) and how it is called; loading
        compiles it again, which the disk cache makes a load of the code compiled before."""
        return _unpickle_function, (self.fgraph, self.fgraph_before_rewrites, self.specs, self.return_list,
                                    self.allow_downcast, self.mode, self.name, self.trust_input)

    # -- inspection ----------------------------------------------------------------------------
    @property
    def inputs(self) -> list[Variable]:
        return list(self.fgraph.inputs)

    @property
    def outputs(self) -> list[Variable]:
        return list(self.fgraph.outputs)

    def __repr__(self) -> str:
        ins = ", ".join(s.name or f"<{s.variable.type}>" for s in self.specs)
        return f"<symflow.Function {self.name or ''}({ins}) mode={self.mode}>"


def _unpickle_function(fgraph: FunctionGraph, built: FunctionGraph, specs: list[InputSpec], return_list: bool,
                       allow_downcast: bool | None, mode: str, name: str | None, trust_input: bool) -> Function:
    """A pickled ``Function`` (``Function.__reduce__``), compiled from its rewritten graph."""
    fn = Function(fgraph, specs, return_list, allow_downcast, mode, name, built)
    fn.trust_input = trust_input
    return fn


def _own(arrays: list[Any], inputs: list[Any]) -> list[np.ndarray]:
    """Arrays that alias no input, shared value or each other (copy where needed)."""
    seen = {id(v) for v in inputs}
    out = []
    for a in arrays:
        if id(a) in seen or a.base is not None or not a.flags.writeable:
            a = np.array(a, order="C", copy=True)
        seen.add(id(a))
        out.append(a)
    return out


# ---------------------------------------------------------------------------------------------
def function(
    inputs: Sequence[Variable | In] | None = None,
    outputs: Variable | Sequence[Variable] | None = None,
    updates: Iterable[tuple[SharedVariable, Any]] | dict[SharedVariable, Any] | None = None,
    givens: Iterable[tuple[Variable, Any]] | dict[Variable, Any] | None = None,
    allow_input_downcast: bool | None = None,
    on_unused_input: str = "raise",
    mode: str | None = None,
    name: str | None = None,
    no_default_updates: bool | Sequence[SharedVariable] = False,
    rewrite: bool | Iterable[str] = True,
) -> Function:
    """Compile a function from ``inputs`` to ``outputs`` that also applies ``updates``.

    ``updates`` are ``(shared, new_value_expression)`` pairs (or a dict); all are computed from
    the old values and then written together, and a call that raises writes nothing.
    ``allow_input_downcast=True`` lets inputs be cast to narrower dtypes (float64 to float32).
    ``mode`` is ``'numba'`` (compiled, the default) or ``'py'`` (the NumPy reference backend).
    ``rewrite=False`` skips the graph rewrites; a list of pass names runs only those.
    ``no_default_updates``: True leaves out the default updates of shared variables (random
    states), a list of shared variables leaves out theirs.
    """
    mode = mode or config.mode
    if mode not in ("numba", "py"):
        raise ValueError(f"mode must be 'numba' or 'py', got {mode!r}")
    if on_unused_input not in ("raise", "warn", "ignore"):
        raise ValueError(f"on_unused_input must be 'raise', 'warn' or 'ignore', got {on_unused_input!r}")
    in_vars, specs = _input_specs(inputs or [], name)
    return_list = isinstance(outputs, (list, tuple))
    if outputs is None:
        out_list: list[Variable] = []
    elif return_list:
        out_list = [as_variable(o) for o in outputs]  # type: ignore[union-attr]
    else:
        out_list = [as_variable(outputs)]  # one output: a variable, or a constant such as 3
    update_pairs = _update_pairs(updates)

    if givens:
        out_list, update_pairs = _apply_givens(givens, out_list, update_pairs, in_vars)
    update_pairs += _default_updates(out_list, update_pairs, _no_default_updates(no_default_updates))

    fgraph = FunctionGraph(in_vars, out_list, update_pairs)
    _check_inputs(fgraph, specs, on_unused_input)
    built = fgraph
    if rewrite is not False:
        from .rewrites import rewrite_graph

        fgraph = rewrite_graph(fgraph, None if rewrite is True else rewrite)
    return Function(fgraph, specs, return_list, allow_input_downcast, mode, name, built)


def _input_specs(inputs: Sequence[Variable | In], fn_name: str | None) -> tuple[list[Variable], list[InputSpec]]:
    if isinstance(inputs, (Variable, In)):
        inputs = [inputs]
    variables, specs = [], []
    for i, item in enumerate(inputs):
        spec_in = item if isinstance(item, In) else In(item) if isinstance(item, Variable) else None
        if spec_in is None:
            raise TypeError(f"function inputs must be symbolic variables, got {type(item).__name__} at position {i}")
        v = spec_in.variable
        if isinstance(v, SharedVariable):
            raise TypeError(f"shared variable {v.describe()} cannot be an explicit input; functions read shared "
                            "values themselves (use givens= to substitute a value)")
        if isinstance(v, Constant):
            raise TypeError(f"input {i} is a constant ({v!r}); inputs must be variables like T.matrix('x')")
        if v.owner is not None:
            raise TypeError(f"input {i} ({v.describe()}) is computed from other variables; inputs must be "
                            "free variables such as T.matrix('x') (use givens= to substitute)")
        if v in variables:
            raise ValueError(f"input {v.describe()} is given twice")
        variables.append(v)
        default = spec_in.value
        specs.append(InputSpec(v, spec_in.name, default, i, fn_name or ""))
    return variables, specs


def _update_pairs(updates: Any) -> list[tuple[SharedVariable, Variable]]:
    if updates is None:
        return []
    if isinstance(updates, dict):
        items = list(updates.items())
    else:
        items = list(updates)
    pairs: list[tuple[SharedVariable, Variable]] = []
    seen: set[SharedVariable] = set()
    for item in items:
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            raise TypeError(f"each update must be a (shared_variable, expression) pair, got {item!r}")
        target, expr = item
        if not isinstance(target, SharedVariable):
            what = target.describe() if isinstance(target, Variable) else repr(target)
            raise TypeError(f"update target {what} is not a shared variable; only shared variables can be updated")
        if target in seen:
            raise ValueError(f"shared variable {target.describe()} is updated twice")
        seen.add(target)
        pairs.append((target, _fit_update(target, expr)))
    return pairs


def _fit_update(target: SharedVariable, expr: Any) -> Variable:
    if not isinstance(expr, Variable):  # a value: checked as set_value checks it
        expr = dtypes.stored_as(expr, target.dtype, f"the update of {target.describe()}")
    expr = as_variable(expr)
    where = f" (built at {expr.location})" if expr.location else ""
    if expr.ndim != target.ndim:
        raise TypeError(f"the update of {target.describe()} has {expr.ndim} dimensions ({expr.type}){where}; "
                        f"it must keep the variable's {target.ndim}")
    if expr.dtype != target.dtype:
        if not np.can_cast(expr.dtype, target.dtype, "safe"):
            raise TypeError(
                f"the update of {target.describe()} has dtype {expr.dtype}{where}; storing it would lose "
                f"precision. Cast the expression with .astype('{target.dtype}') if that is intended"
            )
        expr = cast(expr, target.dtype)
    for b_expr, b_target in zip(expr.broadcastable, target.broadcastable):
        if b_target and not b_expr:
            from ..ops.shape import patternbroadcast

            with built_at(expr.location, note=f"(the update of {target.describe()}, which is broadcastable) "):
                expr = patternbroadcast(expr, target.broadcastable)
            break
    return expr


def _apply_givens(givens: Any, outputs: list[Variable], updates: list[tuple[SharedVariable, Variable]],
                  inputs: list[Variable]) -> tuple[list[Variable], list[tuple[SharedVariable, Variable]]]:
    pairs = list(givens.items()) if isinstance(givens, dict) else list(givens)
    mapping: dict[Variable, Variable] = {}
    for old, new in pairs:
        if not isinstance(old, Variable):
            raise TypeError(f"givens keys must be variables, got {type(old).__name__}")
        if old in inputs:
            raise ValueError(f"givens: {old.describe()} is input {inputs.index(old)} of the function; it cannot "
                             "also be replaced (leave it out of inputs, or out of givens)")
        if not isinstance(new, Variable):
            new = dtypes.stored_as(new, old.dtype, f"givens: the value for {old.describe()}")
        new_var = as_variable(new)
        if new_var.ndim != old.ndim:
            raise TypeError(f"givens: {old.describe()} cannot be replaced by {new_var.describe()} (different ndim)")
        if new_var.dtype != old.dtype:
            if not np.can_cast(new_var.dtype, old.dtype, "safe"):
                raise TypeError(f"givens: replacing {old.describe()} by {new_var.describe()} would lose precision")
            new_var = cast(new_var, old.dtype)
        mapping[old] = new_var
    exprs = clone_replace(outputs + [e for _, e in updates], mapping)
    return exprs[: len(outputs)], [(sv, e) for (sv, _), e in zip(updates, exprs[len(outputs):])]


def _no_default_updates(value: Any) -> bool | set[SharedVariable]:
    """``no_default_updates`` as Theano takes it: True (no default updates), False, or the shared
    variables whose default updates are left out."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (list, tuple, set)) and all(isinstance(v, SharedVariable) for v in value):
        return set(value)
    raise TypeError(f"no_default_updates must be True, False or a list of shared variables, got {value!r}")


def _default_updates(outputs: list[Variable], updates: list[tuple[SharedVariable, Variable]],
                     skip: bool | set[SharedVariable] = False) -> list[tuple[SharedVariable, Variable]]:
    """Updates of shared variables that carry a ``default_update`` (random states), but for those in
    ``skip`` (all if it is True)."""
    if skip is True:
        return []
    explicit = {sv for sv, _ in updates} | (skip if isinstance(skip, set) else set())
    found: list[tuple[SharedVariable, Variable]] = []
    frontier = outputs + [e for _, e in updates]
    seen: set[SharedVariable] = set()
    while frontier:
        new_exprs = []
        for v in graph_inputs(frontier):
            if isinstance(v, SharedVariable) and v.default_update is not None and v not in explicit and v not in seen:
                seen.add(v)
                found.append((v, _fit_update(v, v.default_update)))
                new_exprs.append(v.default_update)
        frontier = new_exprs
    return found


def _check_inputs(fgraph: FunctionGraph, specs: list[InputSpec], on_unused_input: str) -> None:
    leaves = graph_inputs(fgraph.outputs + fgraph.update_values)
    given = set(fgraph.inputs)
    for v in leaves:
        if v in given or isinstance(v, (Constant, SharedVariable)):
            continue
        where = f"\n  (it was created at {v.location})" if v.location else ""
        raise MissingInputError(
            f"the graph needs the input {v.describe()}, which is not among the function's inputs; "
            f"add it to inputs= or give it a value with givens={where}"
        )
    used = set(leaves)
    for spec in specs:
        if spec.variable not in used:
            message = f"{spec.label()} is not used by any output or update"
            if on_unused_input == "raise":
                raise UnusedInputError(message + "; pass on_unused_input='ignore' or 'warn' to allow it")
            if on_unused_input == "warn":
                warnings.warn(message, stacklevel=3)
