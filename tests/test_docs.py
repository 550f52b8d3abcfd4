"""The documentation shows only commands and options that exist, and links that resolve."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer

from edgecnn.cli.main import app

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", ROOT / "bench" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# `edgecnn` starting a shell command (a line, an inline code span, or after ; && |), then its words.
_INVOCATION = re.compile(r"^\s*(?:\$ )?(?:[\w.-]*/)*edgecnn((?: +\S+)*)")


def _snippets(text: str) -> list[str]:
    """Lines of code blocks (comments cut) and inline code spans."""
    found, fenced = [], False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if fenced:
            found.append("" if line.lstrip().startswith("#") else line.split(" #", 1)[0])
        else:
            found += re.findall(r"`([^`]+)`", line)
    return found


def _invocations(text: str) -> list[list[str]]:
    commands = [part for snippet in _snippets(text) for part in re.split(r"&&|;|\|", snippet)]
    return [m[1].split() for m in map(_INVOCATION.match, commands) if m]


def _resolve(words: list[str]) -> tuple[object, list[str]]:
    """The (sub)command the words name (a click command, as typer builds it), and the words
    after it."""
    command = typer.main.get_command(app)
    while words and words[0] in getattr(command, "commands", {}):
        command, words = command.commands[words[0]], words[1:]
    return command, words


def _options(command) -> set[str]:
    """The options ``command --help`` lists."""
    return {"--help"} | {opt for p in command.params if not getattr(p, "hidden", False)
                         for opt in (*p.opts, *p.secondary_opts) if opt.startswith("-")}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_command_and_option_shown_exists(page):
    wrong = []
    for words in _invocations(page.read_text()):
        command, rest = _resolve(words)
        if rest and not rest[0].startswith("-") and hasattr(command, "commands"):
            wrong.append(f"edgecnn {' '.join(words)}: no command {rest[0]!r}")
            continue
        known = _options(command)
        wrong += [f"edgecnn {' '.join(words)}: {opt} is not an option of {command.name}"
                  for opt in (w.split("=", 1)[0] for w in rest) if opt.startswith("--") and opt not in known]
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_link_resolves(page):
    broken = [target for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text())
              if "://" not in target and not (page.parent / target).exists()]
    assert not broken, broken


def test_the_checks_catch_a_wrong_option_and_a_wrong_command():
    """The reader above finds invocations in code blocks and inline spans, and would fail them."""
    text = "run `edgecnn export --no-such-flag` then\n```\nedgecnn device nonsense  # c\n```\n"
    assert _invocations(text) == [["export", "--no-such-flag"], ["device", "nonsense"]]
    export, rest = _resolve(["export", "--no-such-flag"])
    assert export.name == "export" and "--no-such-flag" not in _options(export) and "--force" in _options(export)
    device, rest = _resolve(["device", "nonsense"])
    assert hasattr(device, "commands") and rest == ["nonsense"]
