"""The benchmarks are tools beside the product: none of them imports the demo (shared helpers live in modules
both use, e.g. `phantom_study`, `evaluation.threshold_baseline`)."""
import ast
from pathlib import Path

import isles_pipeline.benchmarking as benchmarking


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_no_benchmark_imports_the_demo():
    modules = sorted(Path(benchmarking.__file__).parent.glob("*.py"))
    assert len(modules) > 3
    for module in modules:
        assert "isles_pipeline.demo" not in _imported_modules(module), module.name
