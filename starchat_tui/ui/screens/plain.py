"""Notifications that show text as it is: ours quote file names, commands and model output, any of which
may contain square brackets that Textual would otherwise read as markup."""

from __future__ import annotations


class PlainNotify:
    """Mixed into a screen: ``notify`` defaults to ``markup=False``."""

    def notify(self, message: str, *, markup: bool = False, **kwargs) -> None:
        super().notify(message, markup=markup, **kwargs)  # type: ignore[misc]
