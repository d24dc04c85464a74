"""Numba set-up: the JIT options symflow uses and where compiled code is cached.

Kernels (small helpers kept next to each op) and generated functions are cached by Numba on
disk under ``symflow.config.cache_dir`` (``SYMFLOW_CACHE_DIR``), so a new process loads them
instead of compiling, and loads only what they need (``LoadingCache``, ``preload_blas``). Main
functions are lowered by ``MainCompiler``, with their own wrapper (un)boxing of arrays.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import importlib.machinery
import importlib.util
import os
import re
import sys
import types as types_module
import weakref
from collections import Counter, defaultdict
from collections.abc import Callable, Container, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import numba
import numpy as np
from llvmlite import binding as llvm_binding
from llvmlite import ir as llvm_ir
from numba.core import base, caching, callconv, cgutils, ir, lowering, pythonapi, types
from numba.core import config as numba_config
from numba.core.analysis import compute_use_defs, must_use_alloca
from numba.core.codegen import JITCodeLibrary
from numba.core.compiler import CompilerBase, DefaultPassBuilder
from numba.core.compiler_machinery import PassManager, register_pass
from numba.core.ir_utils import build_definitions
from numba.core.runtime import rtsys
from numba.core.runtime.context import NRTContext
from numba.core.typed_passes import NativeLowering, NopythonRewrites, PreLowerStripPhis
from numba.core.typing import context as typing_context
from numba.core.untyped_passes import InlineClosureLikes
from numba.np import numpy_support

from ...config import config

#: LLVM optimisation level for generated main functions. A main function is glue (allocations,
#: kernel calls, loops over steps); the arithmetic runs in kernels, which keep Numba's level (3).
#: Level 1 makes the language model's main function compile ~1 s faster at the same run time.
MAIN_OPT_LEVEL = 1
#: A main function's calls of kernels of at most this many LLVM instructions are inlined: passing
#: ~30 arguments costs about as much as running such a kernel. Calls of larger kernels are kept
#: (``noinline``). In the parity model this takes its allocations, its backward step, small fills,
#: sums and copies, and Numba's NRT_incref/NRT_decref (which the kernels' modules carry); not its
#: forward step, softmax or updates. A generated kernel's IR is counted as LLVM's optimiser leaves it
#: (``KernelLibrary``), a fixed kernel's as Numba's machine-code generation rewrote it (longer). 150
#: was set when all were counted the second way; on the three benchmark models 136 inlines the same
#: kernels as 150 did then but for three (``take_pairs`` is no longer inlined: no change measured).
INLINE_MAX_INSTRUCTIONS = 136


class GlueLower(lowering.Lower):  # type: ignore[misc]
    """Numba's lowering of one function, with three changes for main functions:

    - its search for singly assigned variables takes linear time. Numba's version rescans a block's
      statements once per variable, which is quadratic on the long blocks of a main function
      (about 1 s of the language model's compile). The result is the same set; a test compares them.
    - array arguments are borrowed: the Python wrapper holds them for the whole call, so the
      variable an argument is assigned to (once) takes no reference of its own. Numba would count
      one in at the start and one out after the last use: two atomic operations per argument and
      call (0.1-0.2 µs of the parity model's 6 µs, with 14 arrays).
    - calls of small kernels are marked ``alwaysinline`` (``small_kernels``): at the main function's
      optimisation level LLVM would inline few of them, and each call passes every array field by
      value. Calls of the other kernels are marked ``noinline``: they stay calls, and their
      declarations carry what LLVM found about them (``declare_kernel_attributes``), as their bodies
      are linked in only after the module passes (``MainLibrary.finalize``).
    """

    _borrowed: frozenset[str] | set[str] = frozenset()  # variables holding an argument, taking no reference
    _counting = True  # whether incref and decref emit code (off while lowering a borrowed variable)

    def pre_lower(self) -> None:
        super().pre_lower()
        StatusWithoutTry.mark_without_try(self.builder, self.func_ir)
        assigned = Counter(stmt.target.name for block in self.func_ir.blocks.values()
                           for stmt in block.find_insts(ir.Assign))
        self._borrowed = {stmt.target.name for block in self.func_ir.blocks.values()
                          for stmt in block.find_insts(ir.Assign)
                          if isinstance(stmt.value, ir.Arg) and assigned[stmt.target.name] == 1}
        self._counting = True

    def post_lower(self) -> None:
        super().post_lower()
        drop_dead_zero_fills(self.function)
        small, large = small_kernels(self.library)
        for block in self.function.blocks:
            for instruction in block.instructions:
                if isinstance(instruction, llvm_ir.CallInstr):
                    name = getattr(instruction.callee, "name", None)
                    if name in small:
                        instruction.attributes.add("alwaysinline")
                    elif name in large:
                        instruction.attributes.add("noinline")
                        declare_kernel_attributes(instruction.callee, large[name])

    def incref(self, typ: Any, val: Any) -> None:
        if self._counting:
            super().incref(typ, val)

    def decref(self, typ: Any, val: Any) -> None:
        if self._counting:
            super().decref(typ, val)

    def lower_assign(self, ty: Any, inst: Any) -> Any:
        self._counting = inst.target.name not in self._borrowed
        try:
            return super().lower_assign(ty, inst)
        finally:
            self._counting = True

    def delvar(self, name: str) -> None:
        self._counting = name not in self._borrowed
        try:
            super().delvar(name)
        finally:
            self._counting = True

    def _find_singly_assigned_variable(self) -> None:
        singly: set[str] = set()
        if not self.func_ir.func_id.is_generator:
            blocks = self.func_ir.blocks
            use_defs = compute_use_defs(blocks)
            alloca_vars = must_use_alloca(blocks)
            defined_in: defaultdict[str, set[int]] = defaultdict(set)
            for label, names in use_defs.defmap.items():
                for name in names:
                    defined_in[name].add(label)
            used_elsewhere = {name for names in use_defs.usemap.values() for name in names}
            assignments = Counter((label, stmt.target.name) for label, block in self.blocks.items()
                                  for stmt in block.find_insts(ir.Assign))
            for name, labels in defined_in.items():
                if name in alloca_vars or len(labels) != 1 or name in used_elsewhere:
                    continue
                (label,) = labels
                if assignments[(label, name)] == 1:
                    singly.add(name)
        self._singly_assigned_vars = singly
        self._blk_local_varmap = {}


def drop_dead_zero_fills(function: llvm_ir.Function) -> int:
    """Remove the entry block's zero fill of each stack slot that is used in one other block only,
    which begins by storing the whole slot; return how many were removed.

    Numba zero-fills every stack slot where it is allocated, in the entry block, and temporaries
    (array structs and the like) again where they are used. A slot written at the entry and used
    in another block is one LLVM's SROA must promote across the whole function, which is slow on
    a main function's thousands of blocks (1.4 s of the LSTM model's 2.0 s of function passes).
    The fill removed is never read: every path to a use runs the store first.
    """
    entry = function.blocks[0]
    fills: dict[int, llvm_ir.StoreInstr] = {}  # by id(): llvmlite hashes a value by its IR text
    for instruction in entry.instructions:
        if isinstance(instruction, llvm_ir.StoreInstr):
            value, slot = instruction.operands
            if (isinstance(slot, llvm_ir.AllocaInstr) and id(slot) not in fills and
                    isinstance(value, llvm_ir.Constant) and value.constant is None):
                fills[id(slot)] = instruction
    used_in: dict[int, llvm_ir.Block | None] = {}  # None: used in several blocks
    first_use: dict[int, llvm_ir.Instruction] = {}
    for block in function.blocks:
        for instruction in block.instructions:
            operands = instruction.operands
            if isinstance(instruction, llvm_ir.PhiInstr):
                operands = [value for value, _ in instruction.incomings]
            for operand in operands:
                fill = fills.get(id(operand))
                if fill is None or fill is instruction:
                    continue
                if id(operand) not in used_in:
                    used_in[id(operand)], first_use[id(operand)] = block, instruction
                elif used_in[id(operand)] is not block:
                    used_in[id(operand)] = None
    dead = set()
    for key, fill in fills.items():
        block, first = used_in.get(key), first_use.get(key)
        slot = fill.operands[1]
        if (block is not None and block is not entry and isinstance(first, llvm_ir.StoreInstr) and
                first.operands[1] is slot and first.operands[0].type == slot.allocated_type):
            dead.add(id(fill))
    entry.instructions = [instruction for instruction in entry.instructions if id(instruction) not in dead]
    return len(dead)


class KernelFunction(NamedTuple):
    """A function of a kernel library, as its optimised IR defines it."""

    size: int  # instructions
    attributes: str  # function attributes, as LLVM prints them
    return_attributes: str


_KERNEL_FUNCTIONS: weakref.WeakKeyDictionary[Any, dict[str, KernelFunction]] = weakref.WeakKeyDictionary()


def kernel_functions(library: Any) -> dict[str, KernelFunction]:
    """The functions a kernel library defines, read from its optimised IR (which both kinds of kernel
    library keep also when loaded from the cache)."""
    functions = _KERNEL_FUNCTIONS.get(library)
    if functions is None:
        text = str(library._get_module_for_linking())
        groups = dict(re.findall(r"^attributes (#\d+) = \{ (.*) \}$", text, re.M))
        functions = {}
        for match in re.finditer(r"^define .*$", text, re.M):
            header = match.group().rstrip().removesuffix("{").rstrip()
            group = header.rsplit(" ", 1)[-1]
            returned = header[:header.index(" @")].split(" ")[1:-1]  # after ``define``, before the type
            body = text[match.end():text.index("\n}", match.end())]
            returned = [word for word in returned if word not in _DEFINITION_KEYWORDS]
            statuses = re.findall(r"^  ret i32 (\S+)$", body, re.M)
            if not any(word.startswith("range(") for word in returned) and statuses and \
                    all(re.fullmatch(r"-?\d+", status) for status in statuses):
                codes = [int(status) for status in statuses]  # only constants: the range they span
                returned.append(f"range(i32 {min(codes)}, {max(codes) + 1})")
            functions[_defined_name(header)] = KernelFunction(
                body.count("\n  "),  # the indented lines of its IR
                groups.get(group, "") if group.startswith("#") else "", " ".join(returned))
        _KERNEL_FUNCTIONS[library] = functions
    return functions


def small_kernels(library: Any) -> tuple[set[str], dict[str, KernelFunction]]:
    """The functions of ``library``'s linked kernels with at most ``INLINE_MAX_INSTRUCTIONS``
    instructions, and the others (by name)."""
    small, large = set(), {}
    for kernel_library in getattr(library, "_linking_libraries", ()):
        for name, function in kernel_functions(kernel_library).items():
            if function.size <= INLINE_MAX_INSTRUCTIONS:
                small.add(name)
            else:
                large[name] = function
    return small, large


def declare_kernel_attributes(declaration: Any, function: KernelFunction) -> None:
    """Give a main function's declaration of a kernel the attributes LLVM found for the kernel
    (``nounwind``, the memory it touches, the statuses it returns): ``MainLibrary.finalize`` links
    large kernels in only after the module passes, which read what a call does from its declaration.
    llvmlite checks attribute names against a list; these are added as LLVM printed them."""
    for attributes, text in ((declaration.attributes, function.attributes),
                             (declaration.return_value.attributes, function.return_attributes)):
        if text and text not in attributes:
            set.add(attributes, text)


_WITHOUT_BODIES: weakref.WeakKeyDictionary[Any, dict[frozenset[str], Any]] = weakref.WeakKeyDictionary()


def without_bodies(library: Any, names: Container[str]) -> Any:
    """``library``'s module for linking with the functions in ``names`` declared only, or None if it
    defines none of them, or one that a declaration cannot stand for (a function local to it), or if
    its IR has a form this text rewrite does not know (then the module is linked whole, as Numba does)."""
    functions = kernel_functions(library)
    dropped = frozenset(name for name in functions if name in names)
    if not dropped:
        return None
    made = _WITHOUT_BODIES.setdefault(library, {})
    if dropped not in made:
        made[dropped] = _declaring(library._get_module_for_linking(), dropped, functions)
    return made[dropped]


def _declaring(module: Any, dropped: frozenset[str], functions: dict[str, KernelFunction]) -> Any:
    """A copy of ``module`` with the functions ``dropped`` declared only (None if that cannot be made)."""
    if any(module.get_function(name).linkage not in _REPLACEABLE for name in dropped):
        return None
    lines, inside = [], False
    for line in str(module).split("\n"):
        if line.startswith("define "):
            name = _defined_name(line)
            if name in dropped:
                lines.append(_declaration(line, functions[name]))
                inside = True
                continue
        if inside:
            inside = line != "}"
            continue
        lines.append(line)
    try:
        declared = llvm_binding.parse_assembly("\n".join(lines))
        declared.verify()
    except RuntimeError:  # a define line this rewrite does not know (a personality, debug information)
        return None
    return declared


_REPLACEABLE = (llvm_binding.Linkage.linkonce_odr, llvm_binding.Linkage.external)
#: the words of a ``define`` line before the result type that are not attributes of the result
_DEFINITION_KEYWORDS = frozenset("private internal available_externally linkonce weak common appending "
                                 "extern_weak linkonce_odr weak_odr external dso_local dso_preemptable "
                                 "default hidden protected dllimport dllexport ccc fastcc coldcc".split())


def _defined_name(define_line: str) -> str:
    """The function name in a ``define`` line of LLVM IR text."""
    at = define_line.index(" @") + 2
    if define_line[at] == '"':
        return define_line[at + 1:define_line.index('"', at + 1)]
    return define_line[at:define_line.index("(", at)]


def _declaration(define_line: str, function: KernelFunction) -> str:
    """The ``declare`` line for a ``define`` line of ``function``: no linkage, no brace, the function's
    attributes and those of its result (``kernel_functions``), which still hold."""
    header = define_line.rstrip().removesuffix("{").rstrip()
    signature = header[header.rindex(" ", 0, header.index(" @")) + 1:]  # from the result type on
    return " ".join(word for word in ("declare", function.return_attributes, signature) if word)


def box_returned_array(typ: Any, val: Any, c: Any) -> Any:
    """Numba's boxing of an array the main function returns, with NumPy's ``ndarray`` class read from
    the function's environment. Numba's own boxing unpickles the class at every call: a call of a
    Python function from the compiled code, about 0.2 µs per returned array."""
    if not c.context.enable_nrt or typ.box_type is not np.ndarray:
        from numba.core import boxing

        return boxing.box_array(typ, val, c)
    env = c.env_manager
    dtype = env.read_const(env.add_const(numpy_support.as_dtype(typ.dtype)))
    ndarray_class = env.read_const(env.add_const(np.ndarray))
    int32 = llvm_ir.IntType(32)
    adapt = c.pyapi._get_function(
        llvm_ir.FunctionType(c.pyapi.pyobj, [c.pyapi.voidptr, c.pyapi.pyobj, int32, int32, c.pyapi.pyobj]),
        name="NRT_adapt_ndarray_to_python_acqref")  # takes a reference to the data (the NRT's own)
    struct = cgutils.alloca_once_value(c.builder, val)
    boxed = c.builder.call(adapt, [c.builder.bitcast(struct, c.pyapi.voidptr), ndarray_class,
                                   int32(typ.ndim), int32(int(typ.mutable)), dtype])
    c.context.nrt.decref(c.builder, typ, val)
    return boxed


def unbox_borrowed_array(typ: Any, obj: Any, c: Any) -> Any:
    """Numba's unboxing of a C-contiguous array argument, without a MemInfo, and checking the layout.

    - No MemInfo (Numba allocates one per array argument and call): the Python caller holds the
      argument for the whole call, ``GlueLower`` takes no reference to it, and the main function
      returns no array that could be a view of it (``backend.generate`` copies those).
    - The layout: the type promises C order, and reading another layout as C order would read wrong
      elements. A failed check raises TypeError, as a wrong type does; the fast call then takes the
      general path, which makes a contiguous copy. The caller checks the type, dtype and ndim.
    """
    from numba.core import boxing

    if typ.layout != "C" or not c.context.enable_nrt:
        return boxing.unbox_array(typ, obj, c)
    builder = c.builder
    array = c.context.make_array(typ)(c.context, builder)
    struct = array._getpointer()
    adapt = c.pyapi._get_function(llvm_ir.FunctionType(llvm_ir.IntType(32), [c.pyapi.pyobj, c.pyapi.voidptr]),
                                  name="numba_adapt_ndarray")  # data, shape, strides and parent; no MemInfo
    status = builder.call(adapt, [obj, builder.bitcast(struct, c.pyapi.voidptr)])
    failed = cgutils.alloca_once_value(builder, cgutils.is_not_null(builder, status))
    with builder.if_then(builder.not_(builder.load(failed))):
        intp = array.itemsize.type
        itemsize = intp(numpy_support.as_dtype(typ.dtype).itemsize)
        shape, strides = cgutils.unpack_tuple(builder, array.shape), cgutils.unpack_tuple(builder, array.strides)
        ok = builder.icmp_unsigned("==", array.itemsize, itemsize)
        expected = itemsize  # the C-order stride of each axis, from the last; axes of length 1 take any
        for n, stride in zip(reversed(shape), reversed(strides)):
            ok = builder.and_(ok, builder.or_(builder.icmp_signed("==", stride, expected),
                                              builder.icmp_signed("==", n, intp(1))))
            expected = builder.mul(expected, n)
        empty = builder.icmp_signed("==", array.nitems, intp(0))  # NumPy calls an empty array contiguous
        builder.store(builder.not_(builder.or_(ok, empty)), failed)
    with builder.if_then(builder.load(failed), likely=False):
        c.pyapi.err_set_string("PyExc_TypeError", f"expected a C-contiguous array of {typ.dtype}, {typ.ndim}-d")
    return pythonapi.NativeValue(builder.load(struct), is_error=builder.load(failed))


class _OwnLibraryLowering:
    """Mixin for a lowering pass whose function goes into a library of symflow's (``library_class``)."""

    def library_class(self) -> type:
        return KernelLibrary

    def run_pass(self, state: Any) -> bool:
        if state.library is None:
            state.library = self.library_class()(state.targetctx.codegen(), state.func_id.func_qualname)
            state.library.enable_object_caching()
        return bool(super().run_pass(state))  # type: ignore[misc]


@register_pass(mutates_CFG=True, analysis_only=False)
class GlueLowering(_OwnLibraryLowering, NativeLowering):  # type: ignore[misc]
    """Numba's lowering at ``MAIN_OPT_LEVEL`` (or the user's ``NUMBA_OPT``, if lower), by ``GlueLower``,
    with a Python wrapper that boxes returned arrays by ``box_returned_array`` and, when the function
    releases the GIL (no object-mode block), unboxes array arguments by ``unbox_borrowed_array``.

    Kernels the main function calls were compiled during its type inference, before this pass,
    so they keep the default level and Numba's (un)boxing. All three are restored even if lowering
    fails (Numba compiles under one lock, so no other compilation sees them).
    """

    _name = "symflow_glue_lowering"

    @property
    def lowering_class(self) -> type:
        return GlueLower

    def library_class(self) -> type:
        return MainLibrary

    def run_pass(self, state: Any) -> bool:
        from numba.core import boxing  # registers Numba's boxing functions (compiling only: a load needs none)

        saved = numba_config.OPT
        numba_config.OPT = type(saved)(min(int(saved), MAIN_OPT_LEVEL))
        boxers, unboxers = pythonapi._boxers.functions, pythonapi._unboxers.functions
        boxers[types.Array] = box_returned_array
        if state.flags.release_gil:  # else object-mode blocks, which could keep a view of an argument
            unboxers[types.Array] = unbox_borrowed_array
        try:
            return bool(super().run_pass(state))
        finally:
            numba_config.OPT = saved
            boxers[types.Array], unboxers[types.Array] = boxing.box_array, boxing.unbox_array


def _has_closure_like(func_ir: Any) -> bool:
    """Whether Numba's closure inlining has work in ``func_ir``: a closure, a list (comprehensions and
    ``np.array`` of a list are built from one), or a global it inlines (``functools.reduce``, stencils)."""
    from numba.stencils.stencil import StencilFunc

    for block in func_ir.blocks.values():
        for inst in block.find_insts(ir.Assign):
            value = inst.value
            if isinstance(value, ir.Expr) and value.op in ("make_function", "build_list"):
                return True
            if isinstance(value, (ir.Global, ir.FreeVar)) and (
                    value.value is functools.reduce or isinstance(value.value, StencilFunc)):
                return True
    return False


def _has_typed_rewrite(state: Any) -> bool:
    """Whether one of Numba's rewrites after type inference has work: an array expression (an
    operator or a ufunc call giving an array), a list (``np.array`` of constants), or an index
    that is a string literal."""
    from numba.np.ufunc.dufunc import DUFunc

    typemap = state.typemap
    for block in state.func_ir.blocks.values():
        for inst in block.body:
            if isinstance(inst, ir.SetItem) and isinstance(typemap.get(inst.index.name), types.StringLiteral):
                return True
            if not (isinstance(inst, ir.Assign) and isinstance(inst.value, ir.Expr)):
                continue
            expr = inst.value
            if expr.op == "build_list":
                return True
            if expr.op == "getitem" and isinstance(typemap.get(expr.index.name), types.StringLiteral):
                return True
            if not isinstance(typemap.get(inst.target.name), types.Array):
                continue
            if expr.op in ("unary", "binop", "inplace_binop"):
                return True
            function = typemap.get(expr.func.name) if expr.op == "call" else None
            if isinstance(function, types.Function) and isinstance(function.typing_key, (np.ufunc, DUFunc)):
                return True
    return False


@register_pass(mutates_CFG=True, analysis_only=False)
class InlineClosuresIfAny(InlineClosureLikes):  # type: ignore[misc]
    """Numba's closure inlining, skipped when ``_has_closure_like`` finds nothing for it: generated code
    has none, and the pass redoes Numba's analyses of the whole IR (~0.3 s of the LSTM model's main
    function's compile)."""

    _name = "symflow_inline_closures_if_any"

    def run_pass(self, state: Any) -> bool:
        return bool(_has_closure_like(state.func_ir) and super().run_pass(state))


@register_pass(mutates_CFG=True, analysis_only=False)
class TypedRewritesIfAny(NopythonRewrites):  # type: ignore[misc]
    """Numba's rewrites after type inference, skipped when ``_has_typed_rewrite`` finds nothing for them
    (generated code computes arrays in kernels, by loops): ~0.2 s of the LSTM model's main function."""

    _name = "symflow_typed_rewrites_if_any"

    def run_pass(self, state: Any) -> bool:
        return bool(_has_typed_rewrite(state) and super().run_pass(state))


@register_pass(mutates_CFG=False, analysis_only=False)
class StripPhisOnly(PreLowerStripPhis):  # type: ignore[misc]
    """Numba's removal of SSA's phi nodes, without the analysis of variable lifetimes it redoes then.

    ``IRLegalization`` redoes that analysis before lowering (with the deletions lowering needs), and
    nothing in between reads it: inlining overloads and the typed rewrites redo it themselves when
    they change the IR. It took 0.2 s of the LSTM model's cold build (0.1 s in the main function).
    Generators and parallel code keep Numba's pass (their analysis feeds more than lowering).
    """

    _name = "symflow_strip_phis_only"

    def run_pass(self, state: Any) -> bool:
        if state.func_ir.is_generator or state.flags.auto_parallel.enabled:
            return bool(super().run_pass(state))
        state.func_ir = self._strip_phi_nodes(state.func_ir)
        state.func_ir._definitions = build_definitions(state.func_ir.blocks)
        return True


class CompilePatch:
    """A method of one of Numba's classes replaced by ``replace`` while symflow compiles: the outermost
    compile installs it and puts Numba's back (``active``). Numba compiles under one lock, so no other
    compile sees it. ``original`` is Numba's method, which ``replace`` falls back on."""

    owner: type
    name: str

    def __init__(self) -> None:
        self.depth = 0  # nested compiles running (kernels compile while a main function is typed)
        self.original = getattr(self.owner, self.name)

        def installed(obj: Any, *args: Any) -> Any:
            return self.replace(obj, *args)

        self.installed = installed  # a function: bound to each object it is called on

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        own = vars(self.owner).get(self.name)  # None: the method is inherited
        if self.depth == 0:
            setattr(self.owner, self.name, self.installed)
        self.depth += 1
        try:
            yield
        finally:
            self.depth -= 1
            if self.depth == 0:
                if own is None:
                    delattr(self.owner, self.name)
                else:
                    setattr(self.owner, self.name, own)
                self.forget()

    def replace(self, obj: Any, *args: Any) -> Any:
        raise NotImplementedError

    def forget(self) -> None:
        """Drop what was remembered during the compile (called when the outermost one ends)."""


class CallTypeMemo(CompilePatch):
    """Numba's typing of calls of functions (operators, NumPy functions, intrinsics), remembered for
    the length of one symflow compile, kernels compiled in it included.

    Numba types each call by trying the function's templates in turn, again for every call with the
    same argument types: the LSTM model's cold build spent about 1 s typing calls already typed
    (mostly integer arithmetic and comparisons on dimensions). A call typed before gets the same
    signature, and the implementation key Numba records with it is written again, as typing the
    call would (lowering reads the last one written for the signature's argument types). Failures
    are not remembered: they raise as before.
    """

    owner, name = types.Function, "get_call_type"

    def __init__(self) -> None:
        super().__init__()
        self.types: dict[tuple[Any, ...], tuple[Any, Any]] = {}

    def replace(self, function: Any, context: Any, args: Any, kws: Any) -> Any:
        try:
            key = (context, function, tuple(args), tuple(sorted(kws.items())))
            known = self.types.get(key)
        except TypeError:  # an unhashable argument type (an omitted argument's value)
            return self.original(function, context, args, kws)
        if known is not None:
            signature, impl_key = known
            function._impl_keys[signature.args] = impl_key
            return signature
        signature = self.original(function, context, args, kws)
        self.types[key] = (signature, function._impl_keys[signature.args])
        return signature

    def forget(self) -> None:
        self.types.clear()


class AttributeTypeMemo(CompilePatch):
    """Numba's typing of attributes (``a.shape``, ``np.float64``, ``runtime.any_layout``), remembered
    for the length of one symflow compile, like calls (``CallTypeMemo``).

    Numba resolves an attribute of a type by trying the type's attribute templates again for each
    access: 6,473 of the 6,974 resolutions in the LSTM model's cold build repeated an earlier one,
    0.3 s in all. An attribute's type depends only on the type it is read from (types are interned,
    so the same type object comes back). An attribute found missing (None) is remembered too; an
    exception is not.
    """

    owner, name = typing_context.BaseContext, "resolve_getattr"

    def __init__(self) -> None:
        super().__init__()
        self.types: dict[tuple[Any, ...], Any] = {}

    def replace(self, context: Any, typ: Any, attr: str) -> Any:
        key = (context, typ, attr)
        try:
            return self.types[key]
        except KeyError:
            pass
        except TypeError:  # an unhashable type
            return self.original(context, typ, attr)
        self.types[key] = resolved = self.original(context, typ, attr)
        return resolved

    def forget(self) -> None:
        self.types.clear()


class ValueTypeMemo(CompilePatch):
    """Numba's typing of Python values (globals such as ``np`` and kernels, constants, the
    operators it lowers), remembered per object for the length of one symflow compile.

    The LSTM model's cold build types 337 objects 8,875 times (0.17 s). Values are told apart by
    identity, not equality (``1``, ``1.0`` and ``True`` are equal and typed differently), and the
    memo holds each one, so its id is not reused while the compile runs. Failures are not
    remembered: they raise as before.
    """

    owner, name = typing_context.BaseContext, "resolve_value_type"

    def __init__(self) -> None:
        super().__init__()
        self.types: dict[tuple[Any, int], tuple[Any, Any]] = {}  # (context, id) -> (value, its type)

    def replace(self, context: Any, value: Any) -> Any:
        key = (context, id(value))
        known = self.types.get(key)
        if known is not None and known[0] is value:
            return known[1]
        typ = self.original(context, value)
        self.types[key] = (value, typ)
        return typ

    def forget(self) -> None:
        self.types.clear()


class AbiSizeMemo(CompilePatch):
    """The byte size of an LLVM type, remembered for the length of one symflow compile.

    llvmlite finds a type's size by printing and parsing a module that holds one global of it, and
    Numba asks again for each variable it allocates (for debug information, also when there is
    none): 624 times for 9 types, 0.14 s, in the LSTM model's cold build. The size depends only on
    the type and the target's data layout (which the contexts of all flags share).
    """

    owner, name = base.BaseContext, "get_abi_sizeof"

    def __init__(self) -> None:
        super().__init__()
        self.sizes: dict[tuple[Any, Any], int] = {}

    def replace(self, context: Any, ty: Any) -> int:
        key = (context.target_data, ty)  # llvmlite's types compare and hash as the text of their IR
        size = self.sizes.get(key)
        if size is None:
            self.sizes[key] = size = self.original(context, ty)
        return size

    def forget(self) -> None:
        self.sizes.clear()


class MemInfoSearch(CompilePatch):
    """Numba's search for the reference-counted pointers (MemInfos) in a value it increfs or decrefs,
    reading only the members that hold one.

    Numba reads every member of the value: for an array, its shape and strides too, which makes
    LLVM instructions that nothing uses. The LSTM model's main function had 49,553 lines of IR
    before LLVM's optimisation, 39,420 without them, and the same optimised code.
    """

    owner, name = NRTContext, "get_meminfos"

    def __init__(self) -> None:
        super().__init__()
        self.holds: dict[Any, bool] = {}  # type -> whether a value of it holds a MemInfo

    def replace(self, nrt: Any, builder: Any, typ: Any, value: Any) -> list[tuple[Any, Any]]:
        model = nrt._context.data_model_manager[typ]
        meminfos = [(typ, model.get_nrt_meminfo(builder, value))] if model.has_nrt_meminfo() else []
        for member_type, read in model.traverse(builder):
            if self.holds_meminfo(nrt._context.data_model_manager, member_type, builder):
                meminfos += self.replace(nrt, builder, member_type, read(value))
        return meminfos

    def holds_meminfo(self, models: Any, typ: Any, builder: Any) -> bool:
        known = self.holds.get(typ)
        if known is None:
            self.holds[typ] = True  # reached again while deciding (a recursive type): read it
            model = models[typ]
            known = model.has_nrt_meminfo() or any(self.holds_meminfo(models, member, builder)
                                                    for member, _ in model.traverse(builder))
            self.holds[typ] = known
        return known

    def forget(self) -> None:
        self.holds.clear()


class StatusWithoutTry(CompilePatch):
    """Numba's return of a failed call's status, without its test for an enclosing ``try`` block,
    in functions ``GlueLower`` marks as having none (``mark_without_try``).

    Numba tests a counter of open ``try`` blocks after every call that fails, which takes two basic
    blocks and a read of a stack slot per call: a fifth of the LSTM model's main function's blocks.
    Generated code has no ``try`` block, so the counter is always zero and the status is returned.
    """

    owner, name = callconv.CPUCallConv, "return_status_propagate"
    MARK = "_symflow_without_try"  # an attribute set on the IR builder of such a function

    def replace(self, call_conv: Any, builder: Any, status: Any) -> None:
        if not getattr(builder, self.MARK, False):
            return self.original(call_conv, builder, status)
        builder.store(status.excinfoptr, call_conv._get_excinfo_argument(builder.function))
        builder.ret(status.code)
        return None

    @classmethod
    def mark_without_try(cls, builder: Any, func_ir: Any) -> None:
        """Mark ``builder`` as building a function without ``try`` blocks, if ``func_ir`` has none."""
        from numba.core.unsafe import eh

        for block in func_ir.blocks.values():
            for inst in block.find_insts(ir.Assign):
                if isinstance(inst.value, ir.Global) and inst.value.value in (eh.mark_try_block, eh.end_try_block):
                    return
        setattr(builder, cls.MARK, True)


class RefreshOnlyWhenRegistered(CompilePatch):
    """Numba's refresh of a target context's registries of implementations (and its typing
    context's), skipped when none of the registries it read last time has grown since.

    Numba refreshes whenever a lookup of an implementation fails, and one always fails: every array
    struct Numba builds asks for an ``__array__`` conversion that plain arrays do not have. In the
    LSTM model's cold build that made 1,507 refreshes (0.55 s). A refresh reads the
    registrations added to each registry since the last one; when no registry grew, it finds none.
    """

    owner, name = base.BaseContext, "refresh"

    def __init__(self) -> None:
        super().__init__()
        self.sizes: dict[int, tuple[int, ...]] = {}  # id(context) -> registry sizes at its last refresh

    @staticmethod
    def registry_sizes(context: Any) -> tuple[int, ...]:
        """How many registrations each registry read by ``context`` or its typing context holds."""
        return tuple(len(getattr(registry, item)) for owner in (context, context.typing_context)
                     for registry, loader in owner._registries.items() for item in loader.registry_items)

    def replace(self, context: Any) -> None:
        if self.sizes.get(id(context)) != self.registry_sizes(context):
            self.original(context)
            self.sizes[id(context)] = self.registry_sizes(context)

    def forget(self) -> None:
        self.sizes.clear()


#: the least number of new objects that starts a collection of Python's youngest generation while
#: symflow compiles (Python's default is 700).
COMPILE_COLLECTION_THRESHOLD = 20_000


@contextlib.contextmanager
def fewer_collections() -> Iterator[None]:
    """Python's garbage collector started less often, for the length of a compile.

    A compile makes hundreds of thousands of objects (Numba's IR, llvmlite's), and with Python's
    thresholds each hundredth collection goes through all of them: in the LSTM model's cold build,
    collections took 1.2-1.6 s, 0.35-0.6 s with this threshold (peak memory the same, 291-293 MB).
    The thresholds in place before are restored afterwards; a higher one is kept.
    """
    saved = gc.get_threshold()
    gc.set_threshold(max(saved[0], COMPILE_COLLECTION_THRESHOLD), *saved[1:])
    try:
        yield
    finally:
        gc.set_threshold(*saved)


#: the patches in place while symflow compiles
COMPILE_PATCHES = (CallTypeMemo(), AttributeTypeMemo(), ValueTypeMemo(), AbiSizeMemo(), MemInfoSearch(),
                   StatusWithoutTry(), RefreshOnlyWhenRegistered())


class SymflowCompiler(CompilerBase):  # type: ignore[misc]
    """Numba's nopython pipeline for symflow's code (kernels and generated functions): two passes run
    only when the code has something for them and phi nodes are stripped without a second analysis
    (``replaced``), ``lowering`` lowers it, and while it compiles some of Numba's methods are
    replaced (``COMPILE_PATCHES``) and Python collects garbage less often (``fewer_collections``)."""

    lowering: type = NativeLowering
    replaced: dict[type, type] = {InlineClosureLikes: InlineClosuresIfAny, NopythonRewrites: TypedRewritesIfAny,
                                  PreLowerStripPhis: StripPhisOnly}

    def _compile_core(self) -> Any:
        with contextlib.ExitStack() as patched:
            patched.enter_context(fewer_collections())
            for patch in COMPILE_PATCHES:
                patched.enter_context(patch.active())
            return super()._compile_core()

    def define_pipelines(self) -> list[PassManager]:
        pipeline = DefaultPassBuilder.define_nopython_pipeline(self.state)
        replaced = {**self.replaced, NativeLowering: self.lowering}
        pipeline.passes = [(replaced.get(p, p), what) for p, what in pipeline.passes]
        pipeline.finalize()
        return [pipeline]


class MainCompiler(SymflowCompiler):
    """Numba's nopython pipeline with ``GlueLowering`` in place of its native lowering."""

    lowering = GlueLowering


class KernelLibrary(JITCodeLibrary):  # type: ignore[misc]
    """A generated kernel's code: optimised LLVM IR that the functions calling the kernel link in and
    compile with their own code, never compiled to machine code of its own.

    Numba would also compile each kernel alone, yet that code never runs: kernels have no Python
    wrapper, and their callers run the copies compiled into them (and a main function loaded from
    the cache holds its copies). For the 40 generated kernels of the LSTM language model that took
    0.47 s of a cold build (measured). The disk cache keeps the IR alone (``KERNEL_IR``), which
    ``LibraryCacheImpl`` reads back.
    """

    def _finalize_final_module(self) -> None:
        self._finalize_dynamic_globals()  # Numba refuses to cache code with such globals
        self._verify_declare_only_symbols()
        self._finalized = True

    @property
    def codegen(self) -> Any:
        return _NoEnvironment(self._codegen)

    def serialize_using_object_code(self) -> tuple[str, str, bytes]:
        self._ensure_finalized()
        return self.name, KERNEL_IR, self._get_module_for_linking().as_bitcode()

    @classmethod
    def from_ir(cls, codegen: Any, state: tuple[str, str, bytes]) -> KernelLibrary:
        """The library ``serialize_using_object_code`` stored: its IR, ready for linking."""
        name, _, bitcode = state
        library = cls(codegen, name)
        library._final_module = llvm_binding.parse_bitcode(bitcode)  # its functions are linkonce_odr already
        library._finalized = True
        return library


KERNEL_IR = "symflow-kernel-ir"  # how a ``KernelLibrary`` is kept in the disk cache


class MainLibrary(JITCodeLibrary):  # type: ignore[misc]
    """A main function's code, kept in the disk cache as its machine code and the names of the
    functions and globals it defines (``MAIN_OBJECT``), which ``from_object`` reads back.

    Numba keeps a function's IR in the cache too, for functions that would link it, and parses it
    at every load: 32 ms of the LSTM model's warm build. No function links a main function.

    Kernels too large to inline are linked in after LLVM's module passes (``finalize``).
    """

    def finalize(self) -> None:
        """Numba's finalize, except that the kernels' functions too large to inline (``small_kernels``)
        are only declared while LLVM's module passes optimise the main function, and linked in after,
        as the optimiser left them in their own libraries. The main function's calls of them stay
        calls (``GlueLower``), so the passes had nothing to do with them but optimise them again:
        in the LSTM model that was 8,754 of the 16,329 instructions they went through."""
        from numba.core.compiler_lock import require_global_compiler_lock

        require_global_compiler_lock()
        self._codegen._check_llvm_bugs()
        self._raise_if_finalized()
        _, large = small_kernels(self)
        linked, holding_large = set(), []
        for library in self._linking_libraries:
            if library in linked:
                continue
            linked.add(library)
            self._reload_init.update(library._reload_init)
            declared = without_bodies(library, large)
            if declared is None:
                self._final_module.link_in(library._get_module_for_linking(), preserve=True)
            else:
                self._final_module.link_in(declared, preserve=True)
                holding_large.append(library)
        self._optimize_final_module()
        if holding_large:
            for library in holding_large:
                self._final_module.link_in(library._get_module_for_linking(), preserve=True)
            drop_unused = llvm_binding.create_new_module_pass_manager()  # helpers nothing calls any more
            drop_unused.add_global_dead_code_eliminate_pass()
            drop_unused.run(self._final_module, self._codegen._pass_builder())
        self._final_module.verify()
        self._finalize_final_module()

    def serialize_using_object_code(self) -> tuple[str, str, tuple[bytes, list[str]]]:
        self._ensure_finalized()
        module = self._final_module
        defined = [value.name for values in (module.functions, module.global_variables) for value in values
                   if not value.is_declaration]
        return self.name, MAIN_OBJECT, (self._get_compiled_object(), defined)

    @classmethod
    def from_object(cls, codegen: Any, state: tuple[str, str, tuple[bytes, list[str]]]) -> MainLibrary:
        """The library ``serialize_using_object_code`` stored, its machine code loaded (as Numba
        loads a library's cached object code, with the defined names it would read from the IR)."""
        name, _, (object_code, defined) = state
        library = cls(codegen, name)
        library.enable_object_caching()
        library._set_compiled_object(object_code)
        library._finalize_final_module()
        codegen._engine._defined_symbols.update(defined)
        return library


MAIN_OBJECT = "symflow-main-object"  # how a ``MainLibrary`` is kept in the disk cache


class _NoEnvironment:
    """A codegen as ``KernelLibrary.codegen``: Numba sets a function's environment in the machine
    code of its library when it makes the function callable; a kernel has no such code."""

    def __init__(self, codegen: Any) -> None:
        self._codegen = codegen

    def set_env(self, env_name: str, env: Any) -> None:
        pass

    def __getattr__(self, name: str) -> Any:
        return getattr(self._codegen, name)


@register_pass(mutates_CFG=True, analysis_only=False)
class KernelLowering(_OwnLibraryLowering, NativeLowering):  # type: ignore[misc]
    """Numba's native lowering into a ``KernelLibrary``."""

    _name = "symflow_kernel_lowering"


class KernelCompiler(SymflowCompiler):
    """Numba's nopython pipeline with ``KernelLowering`` in place of its native lowering."""

    lowering = KernelLowering


class _FunctionAttributes(llvm_ir.values.FunctionAttributes):  # type: ignore[misc]
    """llvmlite's function attributes, also taking LLVM's string attributes (``"name"="value"``),
    which llvmlite does not list."""

    def add(self, name: str) -> None:
        if name.startswith('"'):
            set.add(self, name)
        else:
            super().add(name)


class WideVectorLower(lowering.Lower):  # type: ignore[misc]
    """Numba's lowering, marking the function ``"prefer-vector-width"="512"``: on Intel CPUs with
    AVX-512, LLVM vectorises with 256-bit registers unless a function asks for more. Where the CPU
    has no AVX-512 the attribute changes nothing. (A 20 x 2000 softmax: 1.63 -> 1.25 ns per element.)"""

    def post_lower(self) -> None:
        super().post_lower()
        attributes = _FunctionAttributes(self.function.attributes)
        attributes.add('"prefer-vector-width"="512"')
        self.function.attributes = attributes


@register_pass(mutates_CFG=True, analysis_only=False)
class WideVectorLowering(_OwnLibraryLowering, NativeLowering):  # type: ignore[misc]
    """Numba's native lowering by ``WideVectorLower``, into a ``KernelLibrary``."""

    _name = "symflow_wide_vector_lowering"

    @property
    def lowering_class(self) -> type:
        return WideVectorLower


class WideVectorCompiler(SymflowCompiler):
    """Numba's nopython pipeline with ``WideVectorLowering`` in place of its native lowering."""

    lowering = WideVectorLowering


#: Numba options for all symflow code: NumPy's division-by-zero semantics, no GIL needed
JIT_OPTIONS: dict[str, Any] = {"error_model": "numpy", "nogil": True}
#: kernels are only called from compiled code: no Python or C wrappers (compiles ~40% faster).
#: symflow's fixed kernels (``jit_kernel``) keep Numba's lowering, machine code included: the IR
#: that main functions link from them is then the IR Numba's machine-code generation rewrote, and
#: the parity model ran about 0.1 µs faster with its small products built from that (measured).
KERNEL_OPTIONS: dict[str, Any] = {**JIT_OPTIONS, "no_cpython_wrapper": True, "no_cfunc_wrapper": True,
                                  "pipeline_class": SymflowCompiler}
#: generated kernels (one or a few per model) are kept as IR (``KernelLibrary``)
GENERATED_KERNEL_OPTIONS: dict[str, Any] = {**KERNEL_OPTIONS, "pipeline_class": KernelCompiler}
#: main functions are called from Python only (no C wrapper) and lowered by ``MainCompiler``
MAIN_OPTIONS: dict[str, Any] = {**JIT_OPTIONS, "no_cfunc_wrapper": True, "pipeline_class": MainCompiler}
#: arithmetic-bound generated kernels (the softmax's exponentials): vectors as wide as the CPU has
WIDE_KERNEL_OPTIONS: dict[str, Any] = {**KERNEL_OPTIONS, "pipeline_class": WideVectorCompiler}

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@functools.cache
def support_fingerprint() -> str:
    """A hash of ``runtime.py`` and this file, whose code (intrinsics, pipelines) is compiled into
    symflow's kernels (read once per process: every fixed kernel's cache locator asks)."""
    from . import runtime
    from .codegen import module_fingerprint

    return f"{module_fingerprint(runtime)}-{module_fingerprint(sys.modules[__name__])}"


class SymflowCacheLocator(caching._SourceFileBackedLocatorMixin, caching._CacheLocator):  # type: ignore[misc,name-defined]
    """Caches code from symflow's own modules and generated modules under ``config.cache_dir``.

    Numba checks only a function's own file before loading it, so the code of symflow's modules
    is kept under a folder named by ``support_fingerprint``: a kernel calling a changed intrinsic
    of ``runtime`` is compiled again. (Generated kernels carry the same hashes in their source.)
    """

    def __init__(self, py_func: Any, py_file: str) -> None:
        self._py_file = py_file
        self._lineno = py_func.__code__.co_firstlineno
        folder = os.path.join(str(config.cache_dir), "numba")
        path = os.path.abspath(py_file)
        if path.startswith(_PACKAGE_DIR) and not path.startswith(os.path.abspath(str(config.cache_dir))):
            folder = os.path.join(folder, "symflow-" + support_fingerprint())
        self._cache_path = os.path.join(folder, self.get_suitable_cache_subpath(py_file))

    def get_cache_path(self) -> str:
        return self._cache_path

    @classmethod
    def from_function(cls, py_func: Any, py_file: str) -> SymflowCacheLocator | None:
        path = os.path.abspath(py_file)
        if not (path.startswith(_PACKAGE_DIR) or path.startswith(os.path.abspath(str(config.cache_dir)))):
            return None
        return super().from_function(py_func, py_file)  # type: ignore[no-any-return]


_locators = getattr(caching.CacheImpl, "_locator_classes", None)
if isinstance(_locators, list) and SymflowCacheLocator not in _locators:
    _locators.insert(0, SymflowCacheLocator)


class LibraryCacheImpl(caching.CompileResultCacheImpl):  # type: ignore[misc]
    """Numba's (de)serialisation of a compiled function, reading symflow's libraries back the way
    they were kept (``READERS``)."""

    def rebuild(self, target_context: Any, payload: tuple[Any, ...]) -> Any:
        read = READERS.get(payload[0][1])
        if read is None:  # a library of Numba's
            return super().rebuild(target_context, payload)
        codegen = target_context.codegen()
        codegen.unserialize_library = functools.partial(read, codegen)  # under the compile lock
        try:
            return super().rebuild(target_context, payload)
        finally:
            del codegen.unserialize_library


#: how each of symflow's libraries is read back from the disk cache, by the kind it was kept as
READERS: dict[str, Callable[[Any, Any], Any]] = {KERNEL_IR: KernelLibrary.from_ir, MAIN_OBJECT: MainLibrary.from_object}


class LoadingCache(caching.FunctionCache):  # type: ignore[misc]
    """Numba's on-disk cache of one function, without the registry refresh before a load.

    Numba refreshes its typing and lowering registries before every cache lookup. That imports
    most of Numba's NumPy support and SciPy's linear algebra (about 0.2 s of a warm start), yet
    loading compiled code needs only the runtime (NRT). On a miss Numba compiles as usual, and
    its compiler refreshes the registries itself. symflow's libraries are read back by
    ``LibraryCacheImpl``.
    """

    _impl_class = LibraryCacheImpl

    def load_overload(self, sig: Any, target_context: Any) -> Any:
        guard = getattr(self, "_guard_against_spurious_io_errors", None)
        load = getattr(self, "_load_overload", None)
        if guard is None or load is None:  # a Numba whose cache is built differently: its own lookup
            return super().load_overload(sig, target_context)
        rtsys.initialize(target_context)
        with guard():
            return load(sig, target_context)


def cache_kernel(dispatcher: Any) -> Any:
    """Give a generated kernel's dispatcher its disk cache, a ``LoadingCache``."""
    dispatcher._cache = LoadingCache(dispatcher.py_func)
    return dispatcher


_BLAS_MODULE = "scipy.linalg.cython_blas"


def preload_blas() -> None:
    """Load SciPy's BLAS bindings, which Numba's matrix products call, without importing
    ``scipy.linalg``: Numba imports ``scipy.linalg.cython_blas`` at the first product, and the
    package's ``__init__`` (most of SciPy's linear algebra and its array-API layer) took 0.1-0.15 s
    of a warm start; the extension module alone takes about 15 ms. Does nothing once it or the
    package is loaded, and leaves the import to Numba if the module is not where SciPy keeps it."""
    if _BLAS_MODULE in sys.modules or "scipy.linalg" in sys.modules:
        return
    try:
        scipy = importlib.util.find_spec("scipy")
        folder = Path(scipy.origin).parent / "linalg"  # type: ignore[union-attr,arg-type]
        path = next(folder / f"cython_blas{s}" for s in importlib.machinery.EXTENSION_SUFFIXES
                    if (folder / f"cython_blas{s}").exists())
        loader = importlib.machinery.ExtensionFileLoader(_BLAS_MODULE, str(path))
        spec = importlib.util.spec_from_file_location(_BLAS_MODULE, path, loader=loader)
        module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        sys.modules[_BLAS_MODULE] = module
        loader.exec_module(module)
    except Exception:  # no SciPy, another layout, or a failed load: Numba imports it as usual
        sys.modules.pop(_BLAS_MODULE, None)


def main_function(signature: tuple[Any, ...], options: dict[str, Any]) -> Callable[[Callable[..., Any]], Any]:
    """Decorator for a generated main function: ``numba.njit(signature, cache=True, **options)``,
    with the cache lookup of ``LoadingCache``."""

    def load_or_compile(fn: Callable[..., Any]) -> Any:
        dispatcher = numba.njit(**options)(fn)
        dispatcher._cache = LoadingCache(fn)  # what enable_caching() does, with our cache class
        dispatcher.compile(signature)
        return dispatcher

    return load_or_compile


_KERNELS: dict[Callable[..., Any], Any] = {}


def jit_kernel(fn: Callable[..., Any]) -> Any:
    """The cached Numba version of a plain-Python kernel (one dispatcher per function), with the
    kernel's own ``numba_options`` (e.g. ``fastmath``) added to ``KERNEL_OPTIONS``. The kernels it
    names in ``fn.helpers`` are compiled too, and its code calls their Numba versions; the names in
    ``fn.intrinsics`` are bound to ``runtime``'s functions (an op's module does not import
    ``runtime``, which imports Numba: ``import symflow`` does not)."""
    if fn not in _KERNELS:
        source = fn
        helpers = getattr(fn, "helpers", ())
        intrinsics = getattr(fn, "intrinsics", ())
        if helpers or intrinsics:  # the same code, reading dispatchers where its module has plain functions
            from . import runtime

            namespace = {**fn.__globals__, **{helper.__name__: jit_kernel(helper) for helper in helpers},
                         **{name: getattr(runtime, name) for name in intrinsics}}
            source = types_module.FunctionType(fn.__code__, namespace, fn.__name__, fn.__defaults__, fn.__closure__)
            source.__qualname__, source.__module__ = fn.__qualname__, fn.__module__
        _KERNELS[fn] = numba.njit(cache=True, **KERNEL_OPTIONS, **getattr(fn, "numba_options", {}))(source)
    return _KERNELS[fn]


def reset_kernels() -> None:
    """Forget the dispatchers of fixed kernels (after their cache was cleared)."""
    _KERNELS.clear()
