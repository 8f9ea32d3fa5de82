"""The one command table: slash-command parsing, aliases, closest-match errors, argument checks, keys."""

from __future__ import annotations

from collections import Counter

import pytest

from robotui.command_table import (
    CONTEXTS,
    GLOBAL,
    TABLE,
    WORKFLOWS,
    Command,
    CommandError,
    CommandTable,
    Text,
    parse,
)
from robotui.hotkeys import hotkey_map


@pytest.mark.parametrize(
    ("text", "name", "argument"),
    [
        ("/q is the cube in the box?", "question", "is the cube in the box?"),
        ("/vqa what colour is the cube", "question", "what colour is the cube"),
        ("/question   point to the yellow cube  ", "question", "point to the yellow cube"),
        ('/question "is it red?"', "question", "is it red?"),  # one pair of quotes is forgiven
        ("/question it's 'fine' here", "question", "it's 'fine' here"),  # inner quotes kept
        ("/action", "action", None),
        ("/action 10", "action", 10.0),
        ("/action 2.5s", "action", 2.5),
        ("/action pick up the cube", "action", "pick up the cube"),
        ("/action put 3 cubes in the box", "action", "put 3 cubes in the box"),
        ("/PAUSE", "pause", None),
        ("/takeover", "takeover", None),
        ("/resume", "resume", None),
        ("/subtask", "subtask", None),
        ("/subtask grasp the cube", "subtask", "grasp the cube"),
        ("/save", "save", None),
        ("/redo", "redo", None),
        ("/stop", "stop", None),
        ("/help", "help", None),
        ("/h pause", "help", "pause"),
        ("/help /q", "help", "question"),  # aliases resolve to the command's name
        ("/exit", "quit", None),
        ("/ports", "ports", None),
        ("/q\tis it\tthere", "question", "is it\tthere"),
    ],
)
def test_parse(text: str, name: str, argument: object) -> None:
    command, parsed = parse(text)
    assert command.name == name
    assert parsed == argument
    assert type(parsed) is type(argument)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("/pasue", "unknown command /pasue — did you mean /pause?"),
        ("/takeovr", "unknown command /takeovr — did you mean /takeover?"),
        ("/qestion is it red", "unknown command /qestion — did you mean /question?"),
        ("/xyzzy", "unknown command /xyzzy — type /help for the list"),
        ("/help pasue", "unknown command /pasue — did you mean /pause?"),
        ("/action -3", "/action: seconds must be positive (got '-3')"),
        ("/action 0", "/action: seconds must be positive (got '0')"),
        ("/action 1e999", "/action: seconds must be a finite number (got '1e999')"),
        ("/pause now", "/pause takes no argument (got 'now')"),
        ("/question", "/question needs <text>, e.g. /q is the cube in the box?"),
        ("/q", "/question needs <text>, e.g. /q is the cube in the box?"),
        ("/", "empty command — type /help for the list"),
        ("pause", "commands start with '/' (got 'pause') — type /help for the list"),
    ],
)
def test_parse_errors_are_one_line_and_say_what_to_do(text: str, message: str) -> None:
    with pytest.raises(CommandError) as info:
        parse(text)
    assert str(info.value) == message
    assert "\n" not in str(info.value)


def test_context_errors_say_where_the_command_works() -> None:
    with pytest.raises(CommandError, match=r"^/takeover works on the rollout screen, not on home$"):
        parse("/takeover", context="home")
    with pytest.raises(CommandError, match=r"^/save works on the record and rollout screen, not on teleop$"):
        parse("/save", context="teleop")
    assert parse("/takeover", context="rollout").command.name == "takeover"
    assert parse("/help", context="record").command.name == "help"  # global commands work everywhere


def test_the_design_commands_are_in_the_table_with_their_hints() -> None:
    usages = {c.name: c.usage for c in TABLE}
    assert usages["action"] == "/action [task|seconds]"
    assert usages["question"] == "/question <text>"
    assert usages["subtask"] == "/subtask [text]"
    for name in ("pause", "takeover", "resume", "save", "redo", "stop"):
        assert usages[name] == f"/{name}"
    assert set(TABLE["question"].aliases) == {"q", "vqa"}
    for workflow in WORKFLOWS:
        assert TABLE[workflow].action == f"app.open_screen({workflow!r})"
    for name in ("help", "log", "quit", "home"):
        assert TABLE[name].namespace == "app"


def test_action_with_passes_the_parsed_argument() -> None:
    command, argument = parse("/q is it 'red'?")
    assert command.action_with(argument) == "screen.question(\"is it 'red'?\")"
    command, argument = parse("/action 10")
    assert command.action_with(argument) == "screen.action(10.0)"
    assert TABLE["pause"].action_with(None) == "screen.pause"
    with pytest.raises(CommandError):
        TABLE["ports"].action_with("x")


def test_one_key_runs_one_command_per_screen() -> None:
    for context in CONTEXTS:
        specific = Counter(c.key for c in TABLE if c.key and context in c.contexts)
        everywhere = Counter(c.key for c in TABLE if c.key and GLOBAL in c.contexts)
        assert not [k for k, n in specific.items() if n > 1], context
        assert not [k for k, n in everywhere.items() if n > 1], context


def test_a_screen_specific_key_beats_a_global_one() -> None:
    assert TABLE.key_owner("escape", "record").name == "stop"
    assert TABLE.key_owner("escape", "teleop").name == "home"
    assert TABLE.key_owner("space", "home") is None


def test_duplicate_names_are_refused() -> None:
    a = Command("pause", "x", "screen.pause")
    b = Command("hold", "y", "screen.hold", aliases=("pause",))
    with pytest.raises(ValueError, match="/pause is defined twice"):
        CommandTable([a, b])


def test_completions_follow_the_context() -> None:
    assert TABLE.completions("q") == ["q", "question", "quit"]
    assert TABLE.completions("q", context="home") == ["quit"]
    assert TABLE.completions("re", context="record") == ["record", "redo", "resume"]


def test_optional_text_and_hints() -> None:
    assert Text("task", required=False).hint == "[task]"
    assert Text().hint == "<text>"


def test_hotkeys_are_unique_and_only_on_run_controls() -> None:
    combos = hotkey_map(TABLE)
    assert set(combos.values()) == {"pause", "takeover", "resume", "save", "redo", "stop"}
    with pytest.raises(ValueError, match="bound to /a and /b"):
        hotkey_map(
            [Command("a", "", "screen.a", hotkey="<ctrl>+x"), Command("b", "", "screen.b", hotkey="<ctrl>+x")]
        )
