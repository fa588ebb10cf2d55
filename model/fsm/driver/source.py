"""Finding a variant driver's step function and how it names the two states.

Every migration driver of the kernel (mlx5 ``mlx5vf_pci_set_device_state()``,
hisi_acc, pds, virtio, qat, xe, samples/vfio-mdev/mtty.c) sets a state the same way: a
loop asks ``vfio_mig_get_next_state(vdev, <device>->STATE_FIELD, new_state, &next)`` for
one step and passes ``next`` to its own step function, which performs the arc from the
state in ``<device>->STATE_FIELD``.  So the loop names the step function, which of its
parameters is the target, and the field that holds the current state; the step function
reads that field into a local (``u32 cur = mvdev->mig_state;``).  The loop may live in
another file than the step function (pds: vfio_dev.c and lm.c), so every given file is
searched.  ``--function NAME`` names the step function when no loop calls it; then the
target is the parameter and the current state the local read from a member that the
function compares with ``VFIO_DEVICE_STATE_*`` constants.

The loop shape was read in each driver (torvalds/linux unless named): mlx5 main.c
``mlx5vf_pci_set_device_state()`` (089803c40193), hisi_acc_vfio_pci.c
``hisi_acc_vfio_pci_set_device_state()`` (008e5e996f42; gregkh/linux 33f06d8be654), pds
vfio_dev.c ``pds_vfio_set_device_state()`` (0d21364c6e8d) with its step function in lm.c
(2d12d18f14d9), virtio migrate.c ``virtiovf_pci_set_device_state()`` (0bbc82e4ec79), qat
main.c ``qat_vf_pci_set_device_state()`` (2ace52718376), xe main.c
``xe_vfio_pci_set_device_state()`` (0eaed89c18ae), samples/vfio-mdev/mtty.c
``mtty_set_state()`` (06ed87b3197e); docs/sources.md#kernel-driver-loop.
"""

from __future__ import annotations

from dataclasses import dataclass

from model.fsm.driver.arms import Roles
from model.fsm.kernel.lexer import Tok
from model.fsm.kernel.locate import FunctionDef, find_function, match_bracket
from model.fsm.kernel.names import FUNCTION, UAPI_CONSTANTS, KernelSourceError
from model.fsm.kernel.preprocess import Macro
from model.fsm.kernel.resolver import Resolver, Scope
from model.fsm.kernel.syntax import RName
from model.fsm.kernel.unit import Unit, read_source, translation_unit

_STATE_PREFIX = "VFIO_DEVICE_STATE_"


@dataclass
class LoopCall:
    """A driver loop's call of ``vfio_mig_get_next_state()`` and of its step function."""

    unit: Unit
    line: int
    step: str  # the step function it calls with the step
    step_line: int
    target_arg: int  # position of the step among the step function's arguments
    cur_args: tuple[int, ...]  # positions where it passes the current state itself
    field: str | None  # the member holding the current state (``mig_state``)


@dataclass
class StepFunction:
    unit: Unit
    definition: FunctionDef
    name: str
    line: int
    roles: Roles
    loop: LoopCall | None


def load_units(paths: list[str], defines: dict[str, Macro] | None) -> list[Unit]:
    return [translation_unit(read_source(p, "driver source"), p, defines) for p in paths]


def _args(toks: list[Tok], open_: int, close: int) -> list[list[Tok]]:
    out: list[list[Tok]] = [[]]
    depth = 0
    for t in toks[open_ + 1:close]:
        if t.text in "([{":
            depth += 1
        elif t.text in ")]}":
            depth -= 1
        if t.text == "," and depth == 0:
            out.append([])
        else:
            out[-1].append(t)
    return out if out != [[]] else []


def _body_end(toks: list[Tok], i: int, depth: int) -> int:
    """Index of the ``}`` that closes the function containing token ``i``, which is at
    brace depth ``depth``."""
    for j in range(i, len(toks)):
        depth += (toks[j].text == "{") - (toks[j].text == "}")
        if depth == 0:
            return j
    return len(toks) - 1


def find_loops(units: list[Unit]) -> list[LoopCall]:
    out = []
    for unit in units:
        toks = unit.toks
        depth = 0
        for i, t in enumerate(toks):
            depth += (t.text == "{") - (t.text == "}")
            if depth and t.text == FUNCTION and i + 1 < len(toks) and toks[i + 1].text == "(":
                call = _loop_call(unit, i, depth)
                if call is not None:
                    out.append(call)
    return out


def _loop_call(unit: Unit, i: int, depth: int) -> LoopCall | None:
    toks = unit.toks
    close = match_bracket(toks, i + 1, "(", ")")
    args = _args(toks, i + 1, close)
    if len(args) != 4 or len(args[3]) != 2 or args[3][0].text != "&":
        return None
    step_var, cur_expr = args[3][1].text, [t.text for t in args[1]]
    field = args[1][-1].text if len(args[1]) > 2 and args[1][-2].text in ("->", ".") else None
    end = _body_end(toks, i, depth)
    for j in range(close + 1, end):
        if toks[j].kind != "id" or toks[j].text == FUNCTION or toks[j + 1].text != "(":
            continue
        call_args = _args(toks, j + 1, match_bracket(toks, j + 1, "(", ")"))
        texts = [[t.text for t in a] for a in call_args]
        if [step_var] in texts:
            return LoopCall(unit, toks[i].line, toks[j].text, toks[j].line,
                            texts.index([step_var]),
                            tuple(k for k, a in enumerate(texts) if a == cur_expr), field)
    return None


def find_step_function(units: list[Unit], name: str | None = None) -> StepFunction:
    loops = find_loops(units)
    if name is None:
        steps = sorted({c.step for c in loops})
        if not steps:
            raise KernelSourceError(
                f"{', '.join(u.path for u in units)}: no loop calls {FUNCTION}() and passes "
                "the step to a function; name the driver's step function with --function")
        if len(steps) > 1:
            raise KernelSourceError(f"several step functions are called from {FUNCTION}() "
                                    f"loops: {', '.join(steps)}; choose one with --function")
        name = steps[0]
    loop = next((c for c in loops if c.step == name), None)
    for unit in units:
        found = find_function(unit.toks, name)
        if found is not None:
            line = unit.toks[found.start - 1].line
            roles = (_roles_from_loop(unit, found, loop) if loop is not None
                     else _roles_by_use(unit, found, name))
            return StepFunction(unit, found, name, line, roles, loop)
    where = (f"{loop.unit.path}:{loop.step_line}: the loop calls {name}()" if loop else
             f"--function {name}:")
    raise KernelSourceError(f"{where} which is not defined in "
                            f"{', '.join(u.path for u in units)} (give the file that defines "
                            "it)")


def _field_locals(toks: list[Tok], found: FunctionDef, field: str | None) -> set[str]:
    """Locals initialised from the state field: ``u32 cur = mvdev->mig_state;``."""
    out = set()
    for k in range(found.start, found.end - 3):
        if toks[k].kind == "id" and toks[k + 1].text == "=":
            j = k + 2
            while j < found.end and toks[j].text != ";":
                j += 1
            rhs = toks[k + 2:j]
            if (len(rhs) >= 3 and rhs[-2].text in ("->", ".")
                    and (field is None or rhs[-1].text == field)
                    and all(t.kind == "id" or t.text in ("->", ".") for t in rhs)):
                out.add(toks[k].text)
    return out


def _roles_from_loop(unit: Unit, found: FunctionDef, loop: LoopCall) -> Roles:
    params = found.params
    if loop.target_arg >= len(params):
        raise KernelSourceError.at(unit.path, unit.toks[found.start - 1].line,
                                   f"{loop.step}() has {len(params)} parameters, but the "
                                   f"loop at {loop.unit.path}:{loop.step_line} passes the step "
                                   f"as argument {loop.target_arg + 1}")
    cur = {params[k].name for k in loop.cur_args if k < len(params)}
    cur |= _field_locals(unit.toks, found, loop.field)
    return Roles(frozenset(cur), frozenset({params[loop.target_arg].name}), loop.field)


def _roles_by_use(unit: Unit, found: FunctionDef, name: str) -> Roles:
    toks = unit.toks
    compared: set[str] = set()
    for k in range(found.start, found.end):
        if toks[k].text in ("==", "!="):
            a, b = toks[k - 1], toks[k + 1]
            if b.text.startswith(_STATE_PREFIX) and a.kind == "id":
                compared.add(a.text)
            if a.text.startswith(_STATE_PREFIX) and b.kind == "id":
                compared.add(b.text)
    params = {p.name for p in found.params if not p.is_pointer}
    new = compared & params
    locals_ = _field_locals(toks, found, None) & compared
    line = toks[found.start - 1].line
    if len(new) != 1 or not locals_:
        raise KernelSourceError.at(unit.path, line, f"{name}(): cannot tell the target "
                                   f"parameter ({', '.join(sorted(new)) or 'none'}) and the "
                                   f"current-state local ({', '.join(sorted(locals_)) or 'none'})"
                                   f" apart; expected one parameter and a local read from the "
                                   "device's state field, both compared with "
                                   f"{_STATE_PREFIX}* constants")
    fields = {_initialiser_field(toks, found, n) for n in locals_}
    return Roles(frozenset(locals_), frozenset(new),
                 next(iter(fields)) if len(fields) == 1 else None)


def _initialiser_field(toks: list[Tok], found: FunctionDef, name: str) -> str | None:
    for k in range(found.start, found.end - 1):
        if toks[k].text == name and toks[k + 1].text == "=":
            j = k + 2
            while toks[j].text != ";":
                j += 1
            return toks[j - 1].text
    return None


class Constants:
    """Names a condition may compare with: the uAPI's constants, object-like macros and
    enumerators of the given files (the step function's file first)."""

    def __init__(self, step: StepFunction, units: list[Unit]) -> None:
        ordered = [step.unit, *(u for u in units if u is not step.unit)]
        toks = [t for u in ordered for t in u.toks]
        defines: dict[str, tuple[str, int]] = {}
        for u in reversed(ordered):
            defines.update(u.defines)
        self._resolver = Resolver(step.unit.path, toks, defines)
        self._cache: dict[str, int | None] = {}

    def __call__(self, name: str) -> int | None:
        if name not in self._cache:
            self._cache[name] = self._lookup(name)
        return self._cache[name]

    def _lookup(self, name: str) -> int | None:
        if name in UAPI_CONSTANTS:
            return UAPI_CONSTANTS[name][0]
        try:
            e = self._resolver.expr(RName(0, name), Scope({}, {}, name))
        except (KernelSourceError, RecursionError):
            return None
        value = getattr(e, "value", None)
        return value if isinstance(value, int) else None
