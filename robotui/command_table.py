"""The one command table: key bindings, slash commands, the command palette, footer hints and help all
come from `COMMANDS` below, so a command cannot exist in one place and be missing from another.

A command applies in *contexts* (the workflow screens, or everywhere). Its handler is an action name
that the app (`app.`) or the current screen (`screen.`) implements; commands whose screen handlers
arrive with later screens are listed already, so parsing, help and argument checks work today.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

GLOBAL = "*"
"""Context of commands that apply on every screen."""

WORKFLOWS = ("ports", "calibrate", "teleop", "record", "rollout", "train")
"""The workflow screens in the order a new user goes through them."""

CONTEXTS = ("home", *WORKFLOWS)
"""Every screen context, in the order help lists them."""


class CommandError(ValueError):
    """A slash command that cannot run; the message is one line meant for the operator."""


Argument = str | float | None
"""A parsed argument: text, a number of seconds (`/action 10`), or nothing."""


class ArgumentParser:
    """How a command reads its argument. Subclasses raise `CommandError` with the fix in the message."""

    @property
    def hint(self) -> str:
        """What help shows after the command name: `<text>` is required, `[text]` optional."""
        return ""

    def parse(self, command: Command, text: str, table: CommandTable) -> Argument:
        raise NotImplementedError


@dataclass(frozen=True)
class NoArgument(ArgumentParser):
    def parse(self, command: Command, text: str, table: CommandTable) -> Argument:
        if text:
            raise CommandError(f"/{command.name} takes no argument (got '{text}')")
        return None


@dataclass(frozen=True)
class Text(ArgumentParser):
    """Free text, never quoted: `/question is the cube in the box?`."""

    name: str = "text"
    required: bool = True

    @property
    def hint(self) -> str:
        return f"<{self.name}>" if self.required else f"[{self.name}]"

    def parse(self, command: Command, text: str, table: CommandTable) -> Argument:
        if not text:
            if self.required:
                example = f", e.g. {command.example}" if command.example else ""
                raise CommandError(f"/{command.name} needs {self.hint}{example}")
            return None
        return text


_SECONDS = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)(e[+-]?\d+)?\s*s?$", re.IGNORECASE)


@dataclass(frozen=True)
class TaskOrSeconds(ArgumentParser):
    """`/action` alone resumes, `/action 10` runs ten seconds then pauses, `/action pick the cube` sets the task."""

    @property
    def hint(self) -> str:
        return "[task|seconds]"

    def parse(self, command: Command, text: str, table: CommandTable) -> Argument:
        if not text:
            return None
        if _SECONDS.match(text):
            seconds = float(text.rstrip("sS").strip())
            if not math.isfinite(seconds):
                raise CommandError(f"/{command.name}: seconds must be a finite number (got '{text}')")
            if seconds <= 0:
                raise CommandError(f"/{command.name}: seconds must be positive (got '{text}')")
            return seconds
        return text


@dataclass(frozen=True)
class CommandName(ArgumentParser):
    """`/help pause`: the argument must itself be a command (with or without the slash)."""

    @property
    def hint(self) -> str:
        return "[command]"

    def parse(self, command: Command, text: str, table: CommandTable) -> Argument:
        if not text:
            return None
        return table.lookup(text.removeprefix("/")).name


@dataclass(frozen=True)
class Command:
    """One row of the table. `action` is a Textual action string such as `app.open_screen('ports')` or
    `screen.pause`; the argument, when there is one, is passed as its single parameter."""

    name: str
    help: str
    action: str
    aliases: tuple[str, ...] = ()
    argument: ArgumentParser = field(default_factory=NoArgument)
    key: str | None = None
    """A Textual key name (`space`, `question_mark`, `ctrl+l`) bound while the command applies."""
    hotkey: str | None = None
    """A pynput combo (`<ctrl>+<alt>+p`) for the optional desktop-wide hotkeys."""
    contexts: frozenset[str] = frozenset({GLOBAL})
    example: str = ""
    palette: bool = True
    """Offered in the command palette (only commands that can run without an argument)."""
    footer: bool = True
    """Its key is shown in the footer (workflow keys are listed on the home screen instead)."""

    @property
    def argument_hint(self) -> str:
        return self.argument.hint

    @property
    def usage(self) -> str:
        """`/action [task|seconds]`: what help and error messages show."""
        return f"/{self.name} {self.argument_hint}".rstrip()

    @property
    def namespace(self) -> str:
        """`app` or `screen`: who implements the handler."""
        return self.action.partition(".")[0]

    @property
    def action_name(self) -> str:
        """The bare action name (`pause` for `screen.pause`, `open_screen` for `app.open_screen('x')`)."""
        return self.action.partition(".")[2].partition("(")[0]

    @property
    def title(self) -> str:
        """Short label for the footer and the palette."""
        return self.name.capitalize()

    @property
    def where(self) -> str:
        """The contexts in words: `record and rollout`, or `every` for a global command."""
        if GLOBAL in self.contexts:
            return "every"
        names = [c for c in CONTEXTS if c in self.contexts]
        return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]

    def applies_in(self, context: str) -> bool:
        return GLOBAL in self.contexts or context in self.contexts

    def action_with(self, argument: Argument) -> str:
        """The action string to run, with the parsed argument as its parameter."""
        if argument is None:
            return self.action
        if "(" in self.action:
            raise CommandError(f"/{self.name} takes no argument")
        return f"{self.action}({argument!r})"


class Invocation(NamedTuple):
    """A parsed slash command: `parse('/q is it red?')` gives `(question command, 'is it red?')`."""

    command: Command
    argument: Argument


def _strip_quotes(text: str) -> str:
    """Arguments need no quotes, but a user who types one matching pair anyway gets what they meant."""
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return text[1:-1].strip()
    return text


class CommandTable:
    """Lookup by name or alias, parsing, and the views each consumer needs (bindings, help, palette)."""

    def __init__(self, commands: Iterable[Command]) -> None:
        self.commands: tuple[Command, ...] = tuple(commands)
        self._by_word: dict[str, Command] = {}
        for command in self.commands:
            for word in (command.name, *command.aliases):
                if word in self._by_word:
                    raise ValueError(f"/{word} is defined twice in the command table")
                self._by_word[word] = command

    def __iter__(self) -> Iterator[Command]:
        return iter(self.commands)

    def __len__(self) -> int:
        return len(self.commands)

    def __getitem__(self, name: str) -> Command:
        return self._by_word[name]

    def get(self, word: str) -> Command | None:
        """The command called `word` (name or alias), or None."""
        return self._by_word.get(word)

    def lookup(self, word: str) -> Command:
        """The command called `word` (name or alias, any case) or a one-line error with the closest match."""
        found = self._by_word.get(word.lower())
        if found is not None:
            return found
        close = difflib.get_close_matches(word.lower(), list(self._by_word), n=1, cutoff=0.6)
        if close:
            raise CommandError(f"unknown command /{word} — did you mean /{close[0]}?")
        raise CommandError(f"unknown command /{word} — type /help for the list")

    def parse(self, text: str, context: str | None = None) -> Invocation:
        """Parse `/name argument...` typed by the operator. With `context`, a command that does not apply
        there (e.g. `/takeover` on the home screen) is an error that says where it works."""
        line = text.strip()
        if not line.startswith("/"):
            raise CommandError(f"commands start with '/' (got '{line}') — type /help for the list")
        words = line[1:].split(maxsplit=1)
        if not words:
            raise CommandError("empty command — type /help for the list")
        word, rest = words[0], (words[1] if len(words) > 1 else "")
        command = self.lookup(word)
        if context is not None and not command.applies_in(context):
            raise CommandError(f"/{command.name} works on the {command.where} screen, not on {context}")
        return Invocation(command, command.argument.parse(command, _strip_quotes(rest.strip()), self))

    def in_context(self, context: str) -> list[Command]:
        return [c for c in self.commands if c.applies_in(context)]

    def keyed(self) -> list[Command]:
        return [c for c in self.commands if c.key]

    def key_owner(self, key: str, context: str) -> Command | None:
        """Which command a key runs in `context`. A command specific to the context beats a global one
        that uses the same key (escape stops a recording but goes home elsewhere)."""
        candidates = [c for c in self.commands if c.key == key and c.applies_in(context)]
        specific = [c for c in candidates if GLOBAL not in c.contexts]
        return (specific or candidates or [None])[0]

    def completions(self, prefix: str, context: str | None = None) -> list[str]:
        """Command words starting with `prefix` (no slash), for a command bar's completion."""
        prefix = prefix.lower()
        return sorted(
            word
            for word, command in self._by_word.items()
            if word.startswith(prefix) and (context is None or command.applies_in(context))
        )


def _workflow(name: str, key: str, help: str) -> Command:
    return Command(name, help, f"app.open_screen({name!r})", key=key, footer=False)


RUN = frozenset({"rollout", "record"})

COMMANDS: Sequence[Command] = (
    # --- app level: workflows, help, log, quit
    _workflow("ports", "1", "Find each arm's serial port (unplug, replug)"),
    _workflow("calibrate", "2", "Set motor ids and record each joint's range"),
    _workflow("teleop", "3", "Drive the follower with the leader or keys"),
    _workflow("record", "4", "Record episodes into a LeRobot dataset"),
    _workflow("rollout", "5", "Run a policy; pause, take over, hand back"),
    _workflow("train", "6", "Train locally or over SSH; watch the loss"),
    Command("home", "Back to the home screen", "app.go_home", key="escape"),
    Command(
        "profile",
        "Edit the robot profile (ports, ids, cameras, fps)",
        "screen.edit_profile",
        key="e",
        contexts=frozenset({"home"}),
    ),
    Command(
        "help",
        "Show every key and slash command",
        "app.help",
        aliases=("h", "?"),
        argument=CommandName(),
        key="question_mark",
        example="/help action",
    ),
    Command("log", "Show or hide the log pane", "app.toggle_log", key="ctrl+l"),
    Command(
        "quit",
        "Leave robotui (stops motion and closes the arms first)",
        "app.quit",
        aliases=("exit",),
        key="ctrl+q",
    ),
    # --- rollout and record
    Command(
        "action",
        "Run the policy: alone resumes, a number runs that many seconds then pauses, text sets the task",
        "screen.action",
        argument=TaskOrSeconds(),
        key="a",
        contexts=frozenset({"rollout"}),
        example="/action pick up the cube",
        palette=False,
    ),
    Command(
        "pause",
        "Stop moving and hold position",
        "screen.pause",
        hotkey="<ctrl>+<alt>+p",
        contexts=RUN,
    ),
    Command(
        "pause-resume",
        "Pause the policy, or hand control back to it when paused",
        "screen.pause_resume",
        key="space",
        contexts=frozenset({"rollout"}),
    ),
    Command(
        "takeover",
        "Take control with the leader arm (it first moves to the follower's pose); again: pause",
        "screen.takeover",
        key="tab",
        hotkey="<ctrl>+<alt>+k",
        contexts=frozenset({"rollout"}),
    ),
    Command(
        "resume",
        "Hand control back to the policy / continue recording",
        "screen.resume",
        key="g",
        hotkey="<ctrl>+<alt>+g",
        contexts=RUN,
    ),
    Command(
        "question",
        "Ask the vision-language model about every camera (the policy pauses; --run keeps it going)",
        "screen.question",
        aliases=("q", "vqa"),
        argument=Text("text"),
        contexts=frozenset({"rollout"}),
        example="/q is the cube in the box?",
        palette=False,
    ),
    Command(
        "subtask",
        "Set the instruction a language-conditioned policy gets; alone, ask the model which subtask is on",
        "screen.subtask",
        argument=Text("text", required=False),
        contexts=RUN,
        example="/subtask grasp the cube",
    ),
    Command(
        "save",
        "Save the current episode and start the next",
        "screen.save",
        key="right",
        hotkey="<ctrl>+<alt>+s",
        contexts=RUN,
    ),
    Command(
        "redo",
        "Discard the current episode and record it again",
        "screen.redo",
        key="left",
        hotkey="<ctrl>+<alt>+r",
        contexts=RUN,
    ),
    Command(
        "stop",
        "Stop the run: save what is recorded and close the dataset",
        "screen.stop",
        key="escape",
        hotkey="<ctrl>+<alt>+x",
        contexts=RUN,
    ),
    # --- ports screen (and the motor-setup wizard)
    # The wizard declares the "ports" context too (CONTEXTS has no slot for it); each row is live only on the
    # screen that has its handler.
    Command(
        "find-robot",
        "Find the follower's (robot) port: unplug its USB cable when asked, then plug it back in",
        "screen.find_port('robot')",
        key="r",
        contexts=frozenset({"ports"}),
    ),
    Command(
        "find-teleop",
        "Find the leader's (teleop) port: unplug its USB cable when asked, then plug it back in",
        "screen.find_port('teleop')",
        key="t",
        contexts=frozenset({"ports"}),
    ),
    Command(
        "assign",
        "Set the port just found (its stable by-id name if it has one) as that arm's port in the profile",
        "screen.assign",
        key="a",
        contexts=frozenset({"ports"}),
    ),
    Command(
        "motors",
        "Set up an arm's motors: ids and baud rate, one motor at a time, gripper first",
        "screen.motor_setup",
        argument=Text("robot|teleop", required=False),
        key="m",
        contexts=frozenset({"ports"}),
        example="/motors teleop",
    ),
    Command(
        "unplug",
        "Simulation aid: pull the chosen virtual arm's USB cable",
        "screen.sim_unplug",
        key="u",
        contexts=frozenset({"ports"}),
        footer=False,
    ),
    Command(
        "replug",
        "Simulation aid: plug the chosen virtual arm's USB cable back in",
        "screen.sim_replug",
        key="p",
        contexts=frozenset({"ports"}),
        footer=False,
    ),
    Command(
        "setup",
        "Motor setup: find the one connected motor and give it its id and the bus baud rate",
        "screen.setup_motor",
        key="enter",
        contexts=frozenset({"ports"}),
    ),
    Command(
        "skip",
        "Motor setup: leave this motor as it is and go to the next",
        "screen.skip_motor",
        key="s",
        contexts=frozenset({"ports"}),
    ),
    Command(
        "back",
        "Motor setup: go back one motor to set it up again",
        "screen.back_motor",
        key="b",
        contexts=frozenset({"ports"}),
    ),
    Command(
        "sim-motor",
        "Motor setup, simulation aid: connect only this motor, factory-fresh, to the virtual arm",
        "screen.sim_motor",
        key="f",
        contexts=frozenset({"ports"}),
        footer=False,
    ),
    # --- calibrate screen
    Command(
        "arm",
        "Switch between calibrating the follower (robot) and the leader (teleop)",
        "screen.arm",
        key="a",
        contexts=frozenset({"calibrate"}),
    ),
    Command(
        "use",
        "Use the arm's existing calibration file (written to the motors if they differ)",
        "screen.use",
        key="u",
        contexts=frozenset({"calibrate"}),
    ),
    Command(
        "recalibrate",
        "Calibrate the arm from scratch: torque off, then the middle pose, then each joint's range",
        "screen.recalibrate",
        key="r",
        contexts=frozenset({"calibrate"}),
    ),
    Command(
        "middle",
        "Every joint is at the middle of its range: write the homing offsets",
        "screen.middle",
        key="m",
        contexts=frozenset({"calibrate"}),
        footer=False,
    ),
    Command(
        "finish",
        "Ranges recorded: write them to the motors and save the calibration file",
        "screen.finish",
        key="f",
        contexts=frozenset({"calibrate"}),
        footer=False,
    ),
    Command(
        "step",
        "Do what the current calibration step asks: use the file or start, set the middle, finish",
        "screen.step",
        key="enter",
        contexts=frozenset({"calibrate"}),
    ),
    Command(
        "abort",
        "Abort this arm's calibration: torque off, bus released",
        "screen.abort",
        key="x",
        contexts=frozenset({"calibrate"}),
    ),
    Command(
        "motor-ids",
        "Set this arm's motor ids and baud rate, one motor at a time (motor setup)",
        "screen.motor_ids",
        key="i",
        contexts=frozenset({"calibrate"}),
    ),
    Command(
        "hand",
        "Simulator: the virtual hand moves the arm for this step (to the middle, then through every range)",
        "screen.hand",
        key="h",
        contexts=frozenset({"calibrate"}),
        footer=False,
    ),
    # --- teleop screen
    Command(
        "engage",
        "Start teleoperation (the follower moves); pressed while running, stop and release torque",
        "screen.engage",
        key="s",
        contexts=frozenset({"teleop"}),
    ),
    Command(
        "release",
        "Stop teleoperation and release the follower's torque",
        "screen.release",
        aliases=("halt",),
        key="x",
        contexts=frozenset({"teleop"}),
    ),
    Command(
        "next-joint",
        "Select the next joint to jog",
        "screen.next_joint",
        key="down",
        contexts=frozenset({"teleop"}),
        footer=False,
    ),
    Command(
        "prev-joint",
        "Select the previous joint to jog",
        "screen.prev_joint",
        key="up",
        contexts=frozenset({"teleop"}),
        footer=False,
    ),
    Command(
        "jog-plus",
        "Jog the selected joint one step up (keyboard teleop; in sim with a leader, moves the virtual leader)",
        "screen.jog(1)",
        key="right",
        contexts=frozenset({"teleop"}),
        footer=False,
    ),
    Command(
        "jog-minus",
        "Jog the selected joint one step down",
        "screen.jog(-1)",
        key="left",
        contexts=frozenset({"teleop"}),
        footer=False,
    ),
    Command(
        "step-up",
        "Bigger jog step",
        "screen.change_step(1)",
        key="plus",
        contexts=frozenset({"teleop"}),
        footer=False,
    ),
    Command(
        "step-down",
        "Smaller jog step",
        "screen.change_step(-1)",
        key="minus",
        contexts=frozenset({"teleop"}),
        footer=False,
    ),
    Command(
        "demo",
        "Sim only: the scripted demonstrator moves the virtual leader (on/off)",
        "screen.toggle_demo",
        key="d",
        contexts=frozenset({"teleop", "rollout"}),
    ),
    # --- record screen
    Command(
        "start",
        "Start with the form's settings (on Record, after a recording: the form again, to append)",
        "screen.start",
        key="ctrl+s",
        contexts=frozenset({"record", "rollout"}),
    ),
    Command(
        "task",
        "Set the task of the next episodes; alone (or the key) edits it",
        "screen.task",
        argument=Text("text", required=False),
        key="t",
        contexts=frozenset({"record"}),
        example="/task pick the cube and put it in the box",
    ),
    # LeRobot users' keys, next to the arrows and esc.
    Command(
        "next",
        "End the phase early, as →: save the episode, or end the reset",
        "screen.save",
        key="n",
        contexts=frozenset({"record"}),
        palette=False,
        footer=False,
    ),
    Command(
        "discard",
        "Discard the episode being recorded and record it again, as ←",
        "screen.redo",
        key="r",
        contexts=frozenset({"record"}),
        palette=False,
        footer=False,
    ),
    Command(
        "end",
        "Stop recording, as esc: save what is recorded and close the dataset",
        "screen.stop",
        key="q",
        contexts=frozenset({"record"}),
        palette=False,
        footer=False,
    ),
    # --- train screen: the job (slash commands name it; alone, and the keys, use the selected one)
    Command(
        "new",
        "New training job: the form (here or on an SSH host, dataset, preset, key hyperparameters)",
        "screen.new_job",
        key="n",
        contexts=frozenset({"train"}),
    ),
    Command(
        "launch",
        "Start the job the new-job form describes",
        "screen.launch",
        key="ctrl+s",
        contexts=frozenset({"train"}),
    ),
    Command(
        "cancel",
        "Cancel a training job after asking: its whole process group, here or on the host",
        "screen.cancel_job",
        argument=Text("job", required=False),
        key="c",
        contexts=frozenset({"train"}),
        example="/cancel act-1",
    ),
    Command(
        "fetch",
        "Copy a job's last checkpoint (pretrained_model) to this machine and show where",
        "screen.fetch",
        argument=Text("job", required=False),
        key="f",
        contexts=frozenset({"train"}),
        example="/fetch act-1",
    ),
    Command(
        "open",
        "Open a job's checkpoint in the Rollout screen, policy filled in (fetched first if needed)",
        "screen.open_in_rollout",
        argument=Text("job", required=False),
        key="o",
        contexts=frozenset({"train"}),
        example="/open act-1",
    ),
)

TABLE = CommandTable(COMMANDS)


def parse(text: str, context: str | None = None) -> Invocation:
    """Parse a slash command against THE table (see `CommandTable.parse`)."""
    return TABLE.parse(text, context)
