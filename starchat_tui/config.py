"""Settings and the folders starchat-tui keeps things in.

Precedence, highest first: command-line flags, ``STARCHAT_TUI_*`` environment variables,
``config.toml`` in the config folder, then the defaults below.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .errors import UsageError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

APP_NAME = "starchat-tui"
ENV_PREFIX = "STARCHAT_TUI_"
DEMO_MODEL = "demo"

# --quantize: int8 is weight-only int8 through optimum-quanto, on any device; 8bit and 4bit are bitsandbytes, CUDA only.
QUANTIZE_CHOICES = ("int8", "8bit", "4bit")


def _platform_dir(kind: str) -> Path:
    override = os.environ.get(f"{ENV_PREFIX}{kind.upper()}_DIR")
    if override:
        return Path(override).expanduser()
    import platformdirs

    getter = {
        "config": platformdirs.user_config_dir,
        "data": platformdirs.user_data_dir,
        "cache": platformdirs.user_cache_dir,
    }[kind]
    return Path(getter(APP_NAME, appauthor=False))


def config_dir() -> Path:
    return _platform_dir("config")


def data_dir() -> Path:
    return _platform_dir("data")


def cache_dir() -> Path:
    return _platform_dir("cache")


def config_file() -> Path:
    return config_dir() / "config.toml"


@dataclass
class Settings:
    """Everything a run needs to know before it loads a model."""

    model: str = DEMO_MODEL
    system: str | None = None
    device: str = "auto"
    dtype: str = "auto"
    quantize: str | None = None
    trust_remote_code: bool = False
    compile: bool = False  # a static KV cache and torch.compile'd decode steps
    api: str = "auto"  # how to talk to a server: auto, chat or completions
    theme: str = "starchat-dark"
    generation: dict[str, Any] = field(default_factory=dict)
    # Sections that other parts of the app own (keys, ui, sandbox ...), kept as the file has them.
    sections: dict[str, Any] = field(default_factory=dict)

    def section(self, name: str) -> dict[str, Any]:
        value = self.sections.get(name, {})
        return value if isinstance(value, dict) else {}


_SCALAR_FIELDS = {f.name for f in fields(Settings)} - {"generation", "sections"}
_SWITCHES = {"trust_remote_code", "compile"}  # true/false in the environment, not strings


def parse_value(text: str) -> Any:
    """Turn a command-line or environment string into the value it spells: 3, 0.2, true, none, [1, 2]."""
    lowered = text.strip().lower()
    if lowered in ("true", "yes", "on"):
        return True
    if lowered in ("false", "no", "off"):
        return False
    if lowered in ("none", "null"):
        return None
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    if text.strip().startswith(("[", "{")):
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            pass
    return text


def parse_options(pairs: list[str]) -> dict[str, Any]:
    """``-o KEY=VALUE`` pairs as a dict with typed values."""
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"-o {pair!r}: expected KEY=VALUE, for example -o temperature=0.5")
        options[key.strip()] = parse_value(value)
    return options


def read_config_file(path: Path | None = None) -> dict[str, Any]:
    path = path or config_file()
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        return {}
    except tomllib.TOMLDecodeError as error:
        raise UsageError(f"{path}: not valid TOML ({error}); fix or remove the file") from None
    except OSError as error:
        raise UsageError(f"{path}: cannot read it ({error.strerror})") from None


def load_settings(flags: dict[str, Any] | None = None, environ: dict[str, str] | None = None) -> Settings:
    """Merge the defaults, config.toml, the environment and flags (flags win)."""
    environ = os.environ if environ is None else environ
    settings = Settings()
    file_values = read_config_file()
    for key, value in file_values.items():
        if key in _SCALAR_FIELDS:
            setattr(settings, key, value)
        elif key == "generation":
            if not isinstance(value, dict):
                raise UsageError(f"{config_file()}: [generation] must be a table of settings")
            settings.generation.update(value)
        elif isinstance(value, dict):
            settings.sections[key] = value
        else:
            raise UsageError(f"{config_file()}: unknown setting {key!r}")
    for name in _SCALAR_FIELDS:
        raw = environ.get(ENV_PREFIX + name.upper())
        if raw is not None:
            setattr(settings, name, parse_value(raw) if name in _SWITCHES else raw)
    for key, value in (flags or {}).items():
        if value is None:
            continue
        if key == "generation":
            settings.generation.update(value)
        else:
            setattr(settings, key, value)
    return settings
