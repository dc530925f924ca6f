"""An option that a kind of %%chat cell would ignore is refused by name, before anything
is sent or changed: a map, a completion, an image, a system prompt or an example reply
takes only the options that mean something to it."""

from __future__ import annotations

import pytest
from conftest import Cell
from IPython.core.error import UsageError

from nbchat.testing.server import StandInServer

SETUP = 'items = ["a", "b"]\ndef lookup(key: str) -> str:\n    return key'


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("--map items --context 2", "--map does not take --context"),
        ("--map items --image pic.png --new", "--map does not take --new, --image"),
        ("--map items -f widget", "--map does not take -f"),
        (
            "--map items --tools lookup",
            "--map does not take --tools: each item is one request, with no tool calls",
        ),
        ("--map items -n 2", "--map takes one reply per item: leave out -n"),
        ("--completion --schema label", "--completion does not take --schema"),
        ("--completion -c work", "--completion does not take -c"),
        ("--completion --context 1", "--completion does not take --context"),
        ("-f image --schema label", "-f image does not take --schema"),
        ("-f image --no-history", "-f image does not take --no-history"),
        ("-s -t 0.5", "-s does not take -t (nothing is sent)"),
        ("--role system --image pic.png", "-s does not take --image (nothing is sent)"),
        ("--role assistant --new", "--role assistant does not take --new (nothing is sent)"),
        ("--concurrency 3", "--concurrency goes with --map NAME"),
    ],
)
def test_an_option_the_cell_would_ignore_is_refused_and_nothing_changes(
    cell: Cell, server: StandInServer, line: str, message: str
) -> None:
    assert cell(SETUP).ok and cell("%%chat\nhi").ok
    from nbchat.magics import INSTANCES

    conversation = INSTANCES[cell.shell].conversations["default"]
    before = (len(server.requests), conversation.messages(system=None))
    run = cell(f"%%chat {line}\nLabel {{item}}")
    assert type(run.error) is UsageError and str(run.error) == message
    assert (len(server.requests), conversation.messages(system=None)) == before


@pytest.mark.parametrize(
    "line",
    [
        "--map items --schema label -o labels --concurrency 2 --no-cache",
        "-s -c work",
        "--completion --echo -o c",
    ],
)
def test_the_options_each_kind_takes_are_taken(cell: Cell, server: StandInServer, line: str) -> None:
    assert cell(SETUP).ok
    run = cell(f"%%chat {line}\nLabel {{item}}")
    assert run.ok, run.error


@pytest.mark.parametrize(
    ("line", "kind"),
    [
        ("", "chat"),
        ("-s", "system"),
        ("--role system", "system"),
        ("--role assistant", "example"),
        ("--map items", "map"),
        ("--map items --batch", "map"),
        ("--map items --compare a,b", "compare"),
        ("--completion", "completion"),
        ("-f image", "image"),
    ],
)
def test_each_kind_is_one_row_of_the_table_the_cell_dispatches_on(shell, line: str, kind: str) -> None:
    from nbchat.magics import CELL_KINDS, INSTANCES, kind_of, parser_of, split_line

    magics = INSTANCES[shell]
    args = parser_of(magics.chat_cell).parse_args(split_line(line))
    row = kind_of(args)
    assert row is CELL_KINDS[kind]
    # how it runs and how it dry-runs are methods of the magics, named in the row
    assert callable(row.run) and callable(row.dry_run) and row.run.__qualname__.startswith("ChatMagics.")
