"""The package's stages import only downwards, so each can be read, tested and changed without the
ones above it: no module imports a stage above its own or the facade (fashion_rag/__init__.py)
from below, and stages of one rank (siblings) do not import each other. Read from the source with
ast, lazy imports inside functions included."""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "fashion_rag"
# Lowest first; stages of one rank are siblings. A stage is a top-level module or subpackage of
# fashion_rag; "" is the facade, which exports the engine's names.
LAYERS = [
    {"errors", "settings", "llm"},
    {"data"},
    {"encoding"},
    {"retrieval"},
    {"outfits", "taste", "training", "insights"},
    {"reply"},
    {"engine"},
    {""},
    {"serving"},
    {"ui"},
    {"prepare"},
    {"__main__"},
]
RANK = {stage: rank for rank, stages in enumerate(LAYERS) for stage in stages}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def stage(module: str) -> str:
    """fashion_rag.retrieval.search -> retrieval; fashion_rag (the facade) -> ""."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def is_module(name: str) -> bool:
    path = PACKAGE.parent.joinpath(*name.split("."))
    return path.is_dir() or path.with_suffix(".py").is_file()


def imported(path: Path, module: str) -> list[tuple[int, str]]:
    """(line, module) of every fashion_rag module the file imports; `from fashion_rag import X`
    counts as the submodule X when there is one, else as the facade."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the module's package, one level up per further dot
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1] + ([base] if base else []))
            found += [(node.lineno, f"{base}.{alias.name}" if is_module(f"{base}.{alias.name}") else base)
                      for alias in node.names]
    return sorted({(line, name) for line, name in found if name.split(".")[0] == "fashion_rag"})


def test_every_module_belongs_to_a_stage():
    stages = {stage(module_name(path)) for path in PACKAGE.rglob("*.py")}
    assert stages - set(RANK) == set(), "add the new stage to LAYERS"


def test_no_stage_imports_upwards_or_a_sibling():
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = module_name(path)
        for line, target in imported(path, module):
            own, other = stage(module), stage(target)
            if other != own and RANK[other] >= RANK[own]:
                wrong.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {target} "
                             f"({other or 'the facade'}, not below {own or 'the facade'})")
    assert wrong == []
