"""The README's Python example runs as written and prints what its comment says."""

import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[3]


def _python_section():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Python\n", 1)[1].split("\n## ", 1)[0]
    return section


def test_readme_example_runs_as_written(tmp_path):
    section = _python_section()
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) == 1
    code = blocks[0]
    assert len(code.strip().splitlines()) == 5
    script = tmp_path / "example.py"
    script.write_text(code, encoding="utf-8")
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "matches: ½·δ²: RTB (β on log r) [mean]" in out.stdout, out.stdout
    # The comment in the example quotes the verdict it prints.
    quoted = re.search(r"# (matches: .*?) \.\.\.", code).group(1)
    assert quoted in out.stdout


def test_readme_install_command_names_this_package():
    section = _python_section()
    assert "pip install ./bindings/python" in section
    assert (ROOT / "bindings" / "python" / "pyproject.toml").exists()
