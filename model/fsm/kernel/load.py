"""Reading ``vfio_mig_get_next_state()`` from a kernel source file, or naming a built-in."""

from __future__ import annotations

from pathlib import Path

from model.fsm.kernel.builtin import BUILTIN_KERNELS, default_kernel
from model.fsm.kernel.interpreter import Function, Table
from model.fsm.kernel.lexer import lex
from model.fsm.kernel.locate import find_function
from model.fsm.kernel.names import FLAGS_TABLE, FSM_TABLE, FUNCTION, TABLE_ROLES, KernelSourceError
from model.fsm.kernel.resolver import Resolver, Scope
from model.fsm.kernel.step import KernelStepFunction
from model.fsm.uapi import ALL_FLAGS, NUM_STATES, MigFlag


def parse_kernel_source(text: str, path: str) -> KernelStepFunction:
    """Interpret ``vfio_mig_get_next_state()`` of a C source text (``path`` names it)."""
    try:
        return _parse_kernel_source(text, path)
    except RecursionError:
        raise KernelSourceError(f"{path}: expressions or statements nested too deeply to "
                                "interpret") from None


def _parse_kernel_source(text: str, path: str) -> KernelStepFunction:
    toks, defines = lex(text)
    found = find_function(toks, FUNCTION)
    if found is None:
        raise KernelSourceError(f"{path}: no definition of {FUNCTION}() found "
                                "(expected in drivers/vfio/vfio_main.c or drivers/vfio/vfio.c)")
    params, start, end = found.params, found.start, found.end
    if len(params) != 4:
        raise KernelSourceError(
            f"{path}:{toks[start - 1].line}: {FUNCTION}() has {len(params)} parameters; "
            "expected (device, cur_fsm, new_fsm, next_fsm)")
    roles = {params[0].name: "dev", params[1].name: "cur", params[2].name: "new",
             params[3].name: "nxt"}
    if not params[3].is_pointer:
        raise KernelSourceError(f"{path}:{toks[start - 1].line}: the fourth parameter of "
                                f"{FUNCTION}() ({params[3].name}) is not a pointer")
    r = Resolver(path, toks, defines)
    scope = Scope(roles, {}, f"{FUNCTION}()")
    body = r.body(toks, start, end, scope)
    tables = dict(r.tables)
    tables.update(scope.tables)
    if FSM_TABLE not in tables:
        t = r.table(FSM_TABLE, toks[start].line if start < len(toks) else 0, scope)
        if t is None:
            raise KernelSourceError(f"{path}: no definition of {FSM_TABLE} "
                                    f"({TABLE_ROLES[FSM_TABLE]}) in {FUNCTION}() or at file "
                                    "scope")
        tables[FSM_TABLE] = t
    fsm = tables[FSM_TABLE]
    if len(fsm.dims) != 2 or fsm.dims[0] != fsm.dims[1]:
        raise KernelSourceError(f"{path}:{fsm.line}: {FSM_TABLE} has shape {fsm.dims}; "
                                "expected a square [states][states] table")
    if fsm.dims[0] > NUM_STATES:
        raise KernelSourceError(f"{path}:{fsm.line}: {FSM_TABLE} has {fsm.dims[0]} states; "
                                f"this model knows the {NUM_STATES} states of uAPI v2")
    for name in (FSM_TABLE, FLAGS_TABLE):
        if name in tables:
            _mention_table_flags(r, tables[name], name == FLAGS_TABLE)
    notes = []
    missing = int((~fsm.initialised).sum())
    if missing:
        notes.append(f"{missing} cell(s) of {FSM_TABLE} are not initialised; C fills them "
                     "with 0, i.e. ERROR")
    return KernelStepFunction(path, Function(FUNCTION, [], body), tables, r.mentioned, notes)


def _mention_table_flags(r: Resolver, t: Table, is_flags: bool) -> None:
    if not is_flags:
        return
    for v in t.values.ravel():
        v = int(v)
        if v & ~int(ALL_FLAGS) == 0:
            r.mentioned |= MigFlag(v)


def load_kernel(path: str | Path) -> KernelStepFunction:
    """Read ``vfio_mig_get_next_state()`` from a kernel source file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8", errors="replace")
    except OSError as e:
        raise KernelSourceError(f"{p}: cannot read the kernel source: {e.strerror or e}") from None
    return parse_kernel_source(text, str(p))


def resolve_kernel(spec: str | Path | None) -> KernelStepFunction:
    """``None``/``"builtin"`` -> :func:`default_kernel`; ``"builtin-fixed"`` ->
    :func:`fixed_kernel`; anything else is a source file path (:func:`load_kernel`)."""
    if spec is None:
        return default_kernel()
    if isinstance(spec, str) and spec in BUILTIN_KERNELS:
        return BUILTIN_KERNELS[spec]()
    return load_kernel(spec)
