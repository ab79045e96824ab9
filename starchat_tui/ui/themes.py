"""Themes: TOML files that set the Textual colours and the Pygments style code is highlighted with.

Shipped themes live in the ``starchat_tui.themes`` package; users add their own as
``<config dir>/themes/NAME.toml``, and a user theme with a shipped theme's name replaces it. Textual's
built-in themes stay available too; their code colours come from a matching Pygments style when there is one.

A theme file::

    name = "my-theme"
    dark = true
    [colors]            # Textual theme colours: primary secondary accent foreground background surface
    primary = "#F0A04B" # panel boost success warning error
    [variables]         # optional Textual CSS variables
    [code]
    pygments = "monokai"
    background = "#1F2128"   # optional; default: the Pygments style's background
    [code.tokens]            # optional per-token overrides, e.g. Comment = "italic #999999"
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import config_dir, config_file
from ..errors import UsageError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

DEFAULT_THEME = "starchat-dark"
COLOR_KEYS = ("primary", "secondary", "accent", "foreground", "background", "surface", "panel", "boost",
              "success", "warning", "error")
_HEX = re.compile(r"^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})$")

# Textual's built-in themes with the Pygments style that matches them best.
BUILTIN_CODE_STYLES = {
    "nord": "nord", "gruvbox": "gruvbox-dark", "dracula": "dracula", "monokai": "monokai",
    "solarized-light": "solarized-light", "solarized-dark": "solarized-dark", "atom-one-dark": "one-dark",
    "tokyo-night": "night-owl", "textual-light": "default", "catppuccin-latte": "default",
    "rose-pine-dawn": "default", "atom-one-light": "default", "flexoki": "lightbulb",
}


@dataclass(frozen=True)
class ThemeSpec:
    """One theme: its Textual colours and how its code is highlighted."""

    name: str
    dark: bool
    colors: dict[str, str]
    variables: dict[str, str] = field(default_factory=dict)
    pygments: str = "monokai"
    code_background: str | None = None
    tokens: dict[str, str] = field(default_factory=dict)
    source: str = "built in"

    def textual_theme(self):
        from textual.theme import Theme

        variables = dict(self.variables)
        variables.setdefault("code-background", self.code_background or pygments_background(self.pygments))
        return Theme(name=self.name, dark=self.dark, variables=variables, **self.colors)


def pygments_background(style_name: str) -> str:
    from pygments.styles import get_style_by_name

    return get_style_by_name(style_name).background_color or "#000000"


def _theme_error(source: str, problem: str) -> UsageError:
    return UsageError(f"theme {source}: {problem}; fix the file or delete it")


def parse_theme(text: str, source: str) -> ThemeSpec:
    """Read one theme file's text, checking every field; errors name the file and the fix."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise _theme_error(source, f"not valid TOML ({error})") from None
    name = data.get("name")
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
        raise _theme_error(source, "needs name = \"...\" (letters, digits, - _ .)")
    dark = data.get("dark", True)
    if not isinstance(dark, bool):
        raise _theme_error(source, "dark must be true or false")
    colors = data.get("colors", {})
    if not isinstance(colors, dict) or "primary" not in colors:
        raise _theme_error(source, "needs a [colors] table with at least primary = \"#RRGGBB\"")
    for key, value in colors.items():
        if key not in COLOR_KEYS:
            raise _theme_error(source, f"unknown colour {key!r} (known: {', '.join(COLOR_KEYS)})")
        if not isinstance(value, str) or not _HEX.match(value):
            raise _theme_error(source, f"colour {key} = {value!r} is not a #RRGGBB value")
    variables = data.get("variables", {})
    if not isinstance(variables, dict) or not all(isinstance(v, str) for v in variables.values()):
        raise _theme_error(source, "[variables] must map names to strings")
    code = data.get("code", {})
    if not isinstance(code, dict):
        raise _theme_error(source, "[code] must be a table")
    pygments = code.get("pygments", "monokai" if dark else "default")
    if not _pygments_style_exists(pygments):
        raise _theme_error(source, f"unknown Pygments style {pygments!r} (list them: python -m pygments -L styles)")
    background = code.get("background")
    if background is not None and (not isinstance(background, str) or not _HEX.match(background)):
        raise _theme_error(source, f"[code] background = {background!r} is not a #RRGGBB value")
    tokens = code.get("tokens", {})
    if not isinstance(tokens, dict) or not all(isinstance(v, str) for v in tokens.values()):
        raise _theme_error(source, "[code.tokens] must map Pygments token names to styles")
    return ThemeSpec(name, dark, dict(colors), dict(variables), pygments, background, dict(tokens), source)


def _pygments_style_exists(name: Any) -> bool:
    from pygments.styles import get_all_styles

    return isinstance(name, str) and name in set(get_all_styles())


def _shipped_files() -> list[tuple[str, str]]:
    """(source name, text) of every shipped theme."""
    from importlib.resources import files

    folder = files("starchat_tui.themes")
    entries = sorted((entry for entry in folder.iterdir() if entry.name.endswith(".toml")), key=lambda e: e.name)
    return [(entry.name, entry.read_text(encoding="utf-8")) for entry in entries]


def user_theme_dir() -> Path:
    return config_dir() / "themes"


@dataclass
class ThemeCatalog:
    """Every theme that can be chosen, and the problems met while reading user themes."""

    themes: dict[str, ThemeSpec]
    problems: list[str]

    def code_style_of(self, name: str, dark: bool) -> tuple[str, str | None, dict[str, str]]:
        """(Pygments style, code background, token overrides) for any theme name, built-in ones included."""
        spec = self.themes.get(name)
        if spec:
            return spec.pygments, spec.code_background, spec.tokens
        style = BUILTIN_CODE_STYLES.get(name, "github-dark" if dark else "default")
        return style, None, {}


def load_themes() -> ThemeCatalog:
    """Shipped themes, then user themes; a broken user theme is skipped and reported, never fatal."""
    themes: dict[str, ThemeSpec] = {}
    for source, text in _shipped_files():
        spec = parse_theme(text, source)
        themes[spec.name] = spec
    problems: list[str] = []
    folder = user_theme_dir()
    if folder.is_dir():
        for path in sorted(folder.glob("*.toml")):
            try:
                spec = parse_theme(path.read_text(encoding="utf-8"), str(path))
            except UsageError as error:
                problems.append(str(error))
            except (OSError, UnicodeDecodeError) as error:
                problems.append(f"theme {path}: cannot read it ({error}); fix the file or delete it")
            else:
                themes[spec.name] = spec
    return ThemeCatalog(themes, problems)


def check_theme_name(name: str, catalog: ThemeCatalog) -> None:
    """Refuse a theme that exists nowhere, naming the choices and where user themes go."""
    from textual.theme import BUILTIN_THEMES

    if name in catalog.themes or name in BUILTIN_THEMES:
        return
    ours = ", ".join(sorted(catalog.themes))
    raise UsageError(
        f"theme {name!r} not found: set theme to one of {ours} (or a Textual theme), "
        f"or add {user_theme_dir() / (name + '.toml')}"
    )


_THEME_LINE = re.compile(r"^\s*theme\s*=.*$")
_TABLE_LINE = re.compile(r"^\s*\[")


def remember_theme(name: str, path: Path | None = None) -> Path:
    """Write ``theme = "NAME"`` into config.toml, keeping every other line and comment as it was."""
    path = path or config_file()
    try:
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    except FileNotFoundError:
        lines = []
    setting = f'theme = "{name}"\n'
    first_table = next((i for i, line in enumerate(lines) if _TABLE_LINE.match(line)), len(lines))
    for index in range(first_table):
        if _THEME_LINE.match(lines[index]):
            lines[index] = setting
            break
    else:
        lines.insert(first_table, setting)
    text = "".join(lines)
    tomllib.loads(text)  # never leave a file behind that the next start cannot read
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".toml.tmp")
    temporary.write_text(text, encoding="utf-8")
    temporary.replace(path)
    return path
