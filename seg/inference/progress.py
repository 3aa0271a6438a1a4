"""Progress of folder inference that means something over hours: a bar over the images to predict
with images/s and the time left, and the failed inputs and those already complete beside it."""

from __future__ import annotations

import sys

from tqdm import tqdm


class FolderProgress:
    """A tqdm bar on stderr over the ``total`` images a run predicts (``already_complete`` more
    were done before), with its rate (img/s) and the time left; ``enabled=False`` shows
    nothing. Subclasses add the other processes of a run (``seg.predict_lightning``).

    The pipeline calls ``advance`` from its main thread after each image it reads, ``message``
    for a line to show, and ``close`` once at the end; ``stop_requested`` is set when the run
    must stop early (a signal).
    """

    def __init__(
        self, total: int, already_complete: int = 0, enabled: bool = True, label: str = ""
    ) -> None:
        self.failed = 0
        self.already_complete = already_complete
        self.stop_requested: str | None = None
        self.bar = tqdm(
            total=total,
            unit="img",
            desc=label or None,
            disable=not enabled,
            file=sys.stderr,
            mininterval=0.5,
            postfix=self._counts(self.failed, already_complete),
        )

    def advance(self, images: int, failed: int = 0) -> None:
        """``images`` more inputs are done (written, or failed: ``failed`` of them)."""
        self.failed += failed
        self.bar.update(images)
        if failed:
            self._show_counts()

    @staticmethod
    def _counts(failed: int, already_complete: int) -> str:
        return f"failed {failed}, already complete {already_complete}"

    def _show_counts(self, failed: int | None = None) -> None:
        failed = self.failed if failed is None else failed
        self.bar.set_postfix_str(self._counts(failed, self.already_complete), refresh=False)

    def message(self, text: str) -> None:
        """Show one line above the bar."""
        self.bar.write(text, file=sys.stderr)

    def close(self) -> None:
        """Draw the bar a last time and stop it."""
        self.bar.close()
