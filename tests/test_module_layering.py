"""The package's layers import downward only, no two packages import each other, and the house rules that a
newcomer relies on hold: absolute imports, small modules, the benchmarks outside the installed package."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

import isles_pipeline

PACKAGE = Path(isles_pipeline.__file__).parent
ROOT = PACKAGE.parent

# Bottom to top. A module may import its own layer or a lower one. Foundation modules are top-level files with
# one concept each (errors, paths, files, ...); they import only each other.
LAYERS = [
    {"errors", "files", "paths", "devices", "parallel", "components", "raw_format", "splits", "class_lookup",
     "acceleration", "checkpoints"},
    {"imageio"},
    {"perfusion"},
    {"dataset_conversion"},
    {"preprocessing"},
    {"evaluation"},
    {"planners"},
    {"networks"},
    {"losses"},
    {"augmentation"},
    {"inference"},
    {"trainers"},
    {"phantom"},
    {"demo"},
    {"cli"},
]
LAYER_OF = {name: index for index, names in enumerate(LAYERS) for name in names}
MAX_MODULE_LINES = 400


def _unit(module: str) -> str:
    """`isles_pipeline.perfusion.aif` -> `perfusion`; `isles_pipeline.paths` -> `paths`."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _imports(path: Path) -> list[tuple[str, int]]:
    """(imported isles_pipeline module, line) of a file, wherever the import stands (functions included)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("isles_pipeline"):
            if node.module == "isles_pipeline":
                found += [(f"isles_pipeline.{alias.name}", node.lineno) for alias in node.names]
            else:
                found.append((node.module, node.lineno))
        elif isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names if alias.name.startswith("isles_pipeline.")]
    return found


def _package_modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def _module_name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


def test_every_unit_of_the_package_has_a_layer():
    units = {_unit(_module_name(p)) for p in _package_modules()} - {""}
    assert units - set(LAYER_OF) == set(), "a new package or top-level module needs a place in LAYERS"


def test_imports_go_to_the_same_layer_or_down():
    upward = []
    for path in _package_modules():
        own = _unit(_module_name(path))
        if not own:
            continue
        for module, line in _imports(path):
            target = _unit(module)
            if target and target != own and LAYER_OF[target] > LAYER_OF[own]:
                upward.append(f"{path.relative_to(ROOT)}:{line} imports {module} ({own} -> {target})")
    assert upward == []


def test_no_two_packages_import_each_other():
    edges = set()
    for path in _package_modules():
        own = _unit(_module_name(path))
        edges |= {(own, _unit(m)) for m, _ in _imports(path) if _unit(m) not in ("", own)}
    assert sorted((a, b) for a, b in edges if (b, a) in edges and a < b) == []


def test_the_layering_check_sees_an_upward_import(tmp_path):
    """The rule above must be able to fail: an upward import written in a probe file is found."""
    probe = tmp_path / "probe.py"
    probe.write_text("from isles_pipeline.cli.train import main\n")
    [(module, _)] = _imports(probe)
    assert LAYER_OF[_unit(module)] > LAYER_OF["imageio"]


def test_imports_are_absolute():
    relative = [f"{p.relative_to(ROOT)}:{node.lineno}" for p in _package_modules()
                for node in ast.walk(ast.parse(p.read_text())) if isinstance(node, ast.ImportFrom) and node.level]
    assert relative == []


@pytest.mark.parametrize("folder", ["isles_pipeline", "benchmarks", "experiments", "tests"])
def test_no_module_is_over_the_size_limit(folder):
    long = [f"{p.relative_to(ROOT)}: {n}" for p in sorted((ROOT / folder).rglob("*.py"))
            if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES]
    assert long == []


def test_the_benchmarks_are_not_part_of_the_installed_package():
    assert not (PACKAGE / "benchmarking").exists()
    for folder in ("benchmarks", "experiments"):
        for path in (ROOT / folder).glob("*.py"):
            assert "isles_pipeline.demo" not in {m for m, _ in _imports(path)}, path.name


def test_nothing_cites_documents_or_issues_users_do_not_have():
    pattern_words = ("DESIGN" + ".md", "DESIGN" + " section", "issue" + " #")  # split so this file does not match
    files = [p for folder in ("isles_pipeline", "benchmarks", "experiments", "tests", "scripts", "documentation")
             for p in (ROOT / folder).rglob("*") if p.is_file() and p.suffix in (".py", ".md", ".sh")]
    files += [ROOT / "README.md"]
    cited = [f"{p.relative_to(ROOT)}: {word}" for p in files for word in pattern_words
             if p.exists() and word in p.read_text()]
    assert cited == []
