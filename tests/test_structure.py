"""The layout's promises, checked on the source: short functions in the fitting and planning stages,
rank workers that never import them, and model math that does no I/O and imports no TensorFlow."""
import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "scalesim"
MAX_FUNCTION_LINES = 60


def _functions(path: Path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node.name, node.end_lineno - node.lineno + 1


def _imports(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = ("." * node.level) + (node.module or "")
            out |= {base} | {f"{base}.{a.name}" for a in node.names}
    return out


@pytest.mark.parametrize("stage", ["fit", "plan"])
def test_no_long_functions_in_the_analysis_stages(stage):
    long = [f"{p.relative_to(PKG)}:{name} ({n} lines)" for p in sorted((PKG / stage).glob("*.py"))
            for name, n in _functions(p) if n > MAX_FUNCTION_LINES]
    assert not long, long


@pytest.mark.parametrize("worker", ["measure/worker.py", "train/worker.py"])
def test_rank_workers_import_no_analysis_stage(worker):
    stages = ("fit", "plan", "report", "analysis", "modelfile")
    bad = [i for i in _imports(PKG / worker)
           if any(i.startswith((f"..{s}", f"scalesim.{s}")) for s in stages)]
    assert not bad, bad


def test_model_math_is_pure():
    for p in (PKG / "model").glob("*.py"):
        imports = _imports(p)
        assert not any(i.split(".")[0] in ("tensorflow", "horovod", "pandas", "pathlib", "os") for i in imports), p
