"""A matplotlib backend for sandboxed snippets: Agg, but ``plt.show()`` saves instead of opening a window.

This file is copied next to each snippet and selected with ``MPLBACKEND=module://_starchat_plots``, so
only snippets that use pyplot ever import it. ``plt.show()`` and figures still open when the snippet
exits become ``plot-N.png`` in the work dir (``STARCHAT_PLOT_DIR``); a figure the snippet already saved
itself is not saved twice. It must not import anything from starchat_tui: it runs inside the sandbox.
"""

import atexit
import os

from matplotlib.backend_bases import FigureManagerBase
from matplotlib.backends.backend_agg import FigureCanvasAgg

_PLOT_DIR = os.environ.get("STARCHAT_PLOT_DIR") or os.getcwd()


class FigureCanvas(FigureCanvasAgg):
    """Agg, remembering whether the figure was written anywhere since it was last shown."""

    manager_class = FigureManagerBase

    def print_figure(self, *args, **kwargs):
        self.figure._starchat_saved = True
        return super().print_figure(*args, **kwargs)


FigureManager = FigureManagerBase


def _save(figure):
    number = 1
    while True:
        path = os.path.join(_PLOT_DIR, f"plot-{number}.png")
        try:
            handle = open(path, "xb")  # noqa: SIM115 - "x" is the test for a free name; the with below closes it
        except FileExistsError:
            number += 1
            continue
        with handle:
            figure.savefig(handle, format="png")
        return path


def _save_open_figures():
    import matplotlib.pyplot as plt

    for number in plt.get_fignums():
        figure = plt.figure(number)
        if not getattr(figure, "_starchat_saved", False):
            _save(figure)
    plt.close("all")


def show(*args, **kwargs):
    """What a window would have shown, saved as PNG files in the work dir."""
    _save_open_figures()


atexit.register(_save_open_figures)
