"""The chat app's parts that need no screen: themes, keys, commands, code blocks, streaming, the chat model."""

from __future__ import annotations

import threading
import time

import pytest

from starchat_tui.config import config_dir, config_file, load_settings
from starchat_tui.errors import UsageError

# -- themes ------------------------------------------------------------------------------------------


def test_shipped_themes_cover_dark_light_and_high_contrast():
    from starchat_tui.ui.themes import load_themes

    catalog = load_themes()
    names = set(catalog.themes)
    assert {"starchat-dark", "starchat-light", "starchat-high-contrast"} <= names
    assert catalog.themes["starchat-dark"].dark and not catalog.themes["starchat-light"].dark
    assert catalog.problems == []
    for spec in catalog.themes.values():
        theme = spec.textual_theme()
        assert theme.name == spec.name
        assert theme.variables["code-background"].startswith("#")


def test_high_contrast_theme_overrides_code_tokens():
    from pygments.token import Keyword

    from starchat_tui.ui.highlight import CodeStyle
    from starchat_tui.ui.themes import load_themes

    spec = load_themes().themes["starchat-high-contrast"]
    style = CodeStyle(spec.pygments, spec.tokens)
    assert style.style_for(Keyword) == "bold #FFD700"
    assert style.style_for(Keyword.Reserved) == "bold #FFD700"  # children inherit an override


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("name = ", "not valid TOML"),
        ('dark = true\n[colors]\nprimary = "#ffffff"', "needs name"),
        ('name = "x"\n[colors]\nsecondary = "#ffffff"', "at least primary"),
        ('name = "x"\n[colors]\nprimary = "white"', "not a #RRGGBB"),
        ('name = "x"\n[colors]\nprimary = "#fff"\nshiny = "#fff"', "unknown colour 'shiny'"),
        ('name = "x"\n[colors]\nprimary = "#ffffff"\n[code]\npygments = "nope"', "unknown Pygments style"),
    ],
)
def test_a_bad_theme_file_gets_one_line_naming_the_file_and_the_problem(text, problem):
    from starchat_tui.ui.themes import parse_theme

    with pytest.raises(UsageError) as caught:
        parse_theme(text, "/somewhere/mine.toml")
    message = str(caught.value)
    assert "/somewhere/mine.toml" in message and problem in message and "\n" not in message


def test_user_themes_are_added_and_broken_ones_reported_not_fatal():
    from starchat_tui.ui.themes import load_themes, user_theme_dir

    folder = user_theme_dir()
    folder.mkdir(parents=True)
    (folder / "ocean.toml").write_text(
        'name = "ocean"\ndark = true\n[colors]\nprimary = "#2288ff"\n[code]\npygments = "nord"\n'
    )
    (folder / "broken.toml").write_text("name = \n")
    catalog = load_themes()
    assert catalog.themes["ocean"].pygments == "nord"
    assert catalog.themes["ocean"].source.endswith("ocean.toml")
    assert len(catalog.problems) == 1 and "broken.toml" in catalog.problems[0]


def test_an_unknown_theme_name_is_refused_with_the_choices():
    from starchat_tui.ui.themes import check_theme_name, load_themes

    catalog = load_themes()
    check_theme_name("starchat-light", catalog)
    check_theme_name("nord", catalog)  # Textual's own themes stay available
    with pytest.raises(UsageError, match="starchat-dark.*themes"):
        check_theme_name("neon", catalog)


def test_remembering_a_theme_keeps_the_rest_of_config_toml():
    from starchat_tui.ui.themes import remember_theme

    path = config_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('# my settings\nmodel = "demo"\n\n[keys]\n# regenerate on F5\nregenerate = "f5"\n')
    remember_theme("starchat-light")
    assert load_settings().theme == "starchat-light"
    remember_theme("starchat-high-contrast")
    text = path.read_text()
    assert text.count("theme =") == 1
    assert "# my settings" in text and "# regenerate on F5" in text
    settings = load_settings()
    assert settings.theme == "starchat-high-contrast"
    assert settings.section("keys") == {"regenerate": "f5"}


def test_remembering_a_theme_creates_config_toml_when_there_is_none():
    from starchat_tui.ui.themes import remember_theme

    assert not config_file().exists()
    remember_theme("starchat-light")
    assert load_settings().theme == "starchat-light"
    assert config_file().parent == config_dir()


# -- keys --------------------------------------------------------------------------------------------


def test_keymap_accepts_strings_and_lists():
    from starchat_tui.ui.keymap import parse_keymap

    assert parse_keymap({"regenerate": "F5", "newline": ["ctrl+j", "alt+enter"]}) == {
        "regenerate": "f5", "newline": "ctrl+j,alt+enter",
    }


def test_keymap_refuses_unknown_ids_with_a_suggestion_and_bad_keys():
    from starchat_tui.ui.keymap import parse_keymap

    with pytest.raises(UsageError, match="did you mean 'regenerate'"):
        parse_keymap({"regenrate": "f5"})
    with pytest.raises(UsageError, match="not a key name"):
        parse_keymap({"send": "ctrl + enter"})
    with pytest.raises(UsageError, match="must be a key or a list"):
        parse_keymap({"send": 5})


def test_every_binding_has_an_id_users_can_remap():
    from starchat_tui.ui.keymap import KEYS, bindings

    ids = [key.id for key in KEYS]
    assert len(ids) == len(set(ids))
    for where in ("app", "chat", "prompt", "block", "result"):
        assert all(binding.id for binding in bindings(where))


# -- slash commands ----------------------------------------------------------------------------------


def test_slash_commands_parse_and_complain_in_one_line():
    from starchat_tui.session.commands import COMMANDS, is_command, parse

    names = set(COMMANDS)
    assert {"model", "system", "set", "show", "retry", "edit", "fork", "copy", "save", "run", "export",
            "clear", "help"} <= names
    command, argument = parse("/set temperature 0.5")
    assert command.name == "set" and argument == "temperature 0.5"
    with pytest.raises(UsageError, match="did you mean /show"):
        parse("/shwo prompt")
    with pytest.raises(UsageError, match="takes no argument"):
        parse("/retry now")
    assert is_command("/help")
    assert not is_command("/usr/bin/python crashes, why?")
    assert not is_command("//not a command")
    assert is_command("!git status") and parse("!git status")[0].name == "shell"
    assert parse("!  ls -l")[1] == "ls -l"


def test_slash_completion_offers_commands_then_arguments():
    from starchat_tui.session.commands import complete

    assert [c.value for c in complete("/sh")] == ["/show ", "/shell "]
    assert [c.value for c in complete("/show p")] == ["/show prompt", "/show params"]
    assert [c.value for c in complete("/theme star", lambda name: ["starchat-dark", "nord"])] == [
        "/theme starchat-dark"
    ]
    assert complete("hello /sh") == []
    assert complete("/show prompt\nmore") == []


# -- code blocks -------------------------------------------------------------------------------------


def test_code_blocks_are_numbered_through_the_answers():
    from starchat_tui.chat.blocks import blocks_before, number_blocks

    messages = [
        {"role": "user", "content": "```python\nnot counted\n```"},
        {"role": "assistant", "content": "One:\n```python\nprint(1)\n```\nand\n```bash\necho 2\n```"},
        {"role": "user", "content": "more"},
        {"role": "assistant", "content": "- item\n\n  ```js\n  x()\n  ```\n\nAfter.\n\n    indented code\n"},
    ]
    blocks = number_blocks(messages)
    assert [(b.number, b.language, b.code) for b in blocks] == [
        (1, "python", "print(1)"), (2, "bash", "echo 2"), (3, "js", "x()"), (4, "", "indented code"),
    ]
    assert blocks_before(messages, 3) == 2
    assert blocks[0].suggested_name() == "block1.py" and blocks[3].suggested_name() == "block4.txt"


# -- highlighting ------------------------------------------------------------------------------------


def test_code_is_highlighted_in_the_pygments_style_colours():
    from starchat_tui.ui.highlight import CodeStyle

    content = CodeStyle("monokai").highlight("def f():\n    return 1\n", "python")
    assert content.plain == "def f():\n    return 1\n"
    styles = {content.plain[span.start:span.end]: str(span.style) for span in content.spans}
    assert "#66d9ef" in styles["def"].lower()  # Monokai's keyword colour
    assert "#ae81ff" in styles["1"].lower()  # and its number colour
    light = CodeStyle("vs").highlight("def f():\n    return 1\n", "python")
    assert {str(s.style) for s in light.spans} != {str(s.style) for s in content.spans}


# -- streaming ---------------------------------------------------------------------------------------


def test_the_feeder_batches_a_fast_producer_and_loses_nothing():
    import asyncio

    from starchat_tui.ui.feeder import StreamFeeder, TokenBuffer

    chunks = [f"tok{i} " for i in range(20000)] + ["\x1b[2J the end"]
    buffer = TokenBuffer()

    def produce() -> None:
        for chunk in chunks:
            buffer.put(chunk)
            if len(chunk) % 7 == 0:
                time.sleep(0)  # let the loop run now and then, as a real generator does
        buffer.close()

    written: list[str] = []
    progress: list[int] = []

    async def write(text: str) -> None:
        written.append(text)

    async def main() -> str:
        feeder = StreamFeeder(buffer, write, on_progress=lambda text: progress.append(len(text)))
        thread = threading.Thread(target=produce)
        thread.start()
        text = await feeder.run()
        thread.join()
        return text

    text = asyncio.run(main())
    assert text == "".join(chunks)  # the raw text comes back whole
    assert "".join(written) == "".join(chunks[:-1]) + "␛[2J the end"  # what reaches the screen is inert
    assert len(written) < len(chunks) / 50  # batched: far fewer writes than chunks
    assert progress == sorted(progress) and progress[-1] == len(text)


def test_the_feeder_reports_a_producer_error_after_flushing_what_came_first():
    import asyncio

    from starchat_tui.ui.feeder import StreamFeeder, TokenBuffer

    buffer = TokenBuffer()
    buffer.put("partial answer")
    buffer.close(RuntimeError("out of memory"))
    written: list[str] = []

    async def write(text: str) -> None:
        written.append(text)

    text = asyncio.run(StreamFeeder(buffer, write).run())
    assert text == "partial answer" and written == ["partial answer"]
    assert isinstance(buffer.error, RuntimeError)


# -- the chat as data --------------------------------------------------------------------------------


def test_the_feeder_backs_off_when_painting_is_expensive_and_not_when_it_is_cheap():
    import asyncio

    from starchat_tui.ui import feeder as streaming
    from starchat_tui.ui.feeder import StreamFeeder, TokenBuffer

    def feed(cost: float) -> StreamFeeder:
        buffer = TokenBuffer()
        # The UI thread's CPU clock, advanced only by the repaints: a real clock also counts whatever else
        # the interpreter does, which on a busy machine made "cheap" painting look expensive.
        spent = [0.0]

        async def write(text: str) -> None:
            spent[0] += cost  # CPU work, as a costly repaint is

        async def main() -> StreamFeeder:
            feeder = StreamFeeder(buffer, write, cpu_clock=lambda: spent[0])

            async def produce() -> None:
                for n in range(12):
                    buffer.put(f"t{n} ")
                    await asyncio.sleep(0.03)
                buffer.close()

            await asyncio.gather(feeder.run(), produce())
            return feeder

        return asyncio.run(main())

    # Costly enough to back off, not so costly that the 10-frames-a-second floor hides the back-off.
    cost = streaming.UI_SHARE * (streaming.FLUSH_INTERVAL + streaming.MAX_INTERVAL) / 2
    cheap, costly = feed(0.0), feed(cost)
    assert cheap.widest_interval == streaming.FLUSH_INTERVAL
    assert costly.widest_interval > streaming.FLUSH_INTERVAL
    assert min(streaming.MAX_INTERVAL, cost / streaming.UI_SHARE) * 0.9 <= costly.widest_interval
    assert costly.widest_interval <= streaming.MAX_INTERVAL
    assert costly.text == cheap.text == "".join(f"t{n} " for n in range(12))
