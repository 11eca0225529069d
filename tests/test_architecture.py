"""The shape of the project: the core never imports discord, and the CLI's read commands
run on the core alone (docs/architecture.md)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys

from conftest import CORPUS, ROOT

CORE = ROOT / "core"


def core_modules() -> list[str]:
    return sorted(
        ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for path in CORE.rglob("*.py")
    )


def run_python(code: str, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def test_importing_every_core_module_leaves_discord_unloaded():
    modules = core_modules()
    assert "core.planner" in modules and "core.store" in modules  # the listing is real
    code = (
        "import importlib, json, sys\n"
        "for name in sys.argv[1:]:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] == 'discord')))\n"
    )
    done = run_python(code, *modules)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []


def test_no_core_source_names_discord_in_an_import():
    offenders = []
    for path in CORE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [
                f"{path.relative_to(ROOT)}: {n}"
                for n in names
                if n.split(".")[0] in {"discord", "bot", "cogs", "simcord"}
            ]
    assert offenders == []


def test_the_cli_read_commands_run_without_discord(tmp_path):
    """`ingest`, `search`, `story`, `related` and `topics` never load discord."""
    db = tmp_path / "news.db"
    code = (
        "import json, sys\n"
        "from bot.cli import main\n"
        "code = main(sys.argv[1:])\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] == 'discord')\n"
        "print('DISCORD-MODULES', json.dumps(loaded), file=sys.stderr)\n"
        "sys.exit(code)\n"
    )
    env = {"PATH": "/usr/bin:/bin", "NEWS_DB": str(db), "NEWS_ARCHIVE": str(CORPUS)}
    first_id = None
    for args in (
        ["ingest"],
        ["search", "canvas", "apps", "--json"],
        ["topics"],
        ["story", "PLACEHOLDER"],
        ["related", "PLACEHOLDER"],
    ):
        if first_id is not None:
            args = [first_id if a == "PLACEHOLDER" else a for a in args]
        done = run_python(code, *args, env=env)
        assert done.returncode == 0, (args, done.stderr[-2000:])
        marker = [line for line in done.stderr.splitlines() if line.startswith("DISCORD-MODULES")]
        assert marker == ["DISCORD-MODULES []"], (args, marker)
        if args[0] == "search":
            first_id = json.loads(done.stdout)[0]["id"]
