"""Progress display for training operations: an overall bar and an epoch bar (``tqdm.auto``).

In Jupyter the bars are widgets (when ``ipywidgets`` is installed, text bars otherwise), in a
terminal they are text bars on stderr.
"""

from __future__ import annotations

import sys
from typing import IO, Any

from ktrdr.service.convert import IDLE_HEARTBEAT
from ktrdr.training.v1 import common_pb2

_SHOWN_METRICS = ("train_loss", "train_accuracy", "val_loss", "val_accuracy")


def _new_bar(**kwargs: Any) -> Any:
    """A ``tqdm.auto`` bar; a plain text bar where the notebook widget is unavailable."""
    import warnings

    from tqdm import TqdmWarning

    with warnings.catch_warnings():  # Jupyter without ipywidgets: tqdm.auto warns, then falls back
        warnings.simplefilter("ignore", TqdmWarning)
        from tqdm.auto import tqdm

    try:
        return tqdm(**kwargs)
    except ImportError:  # Jupyter without ipywidgets: tqdm.notebook refuses to start
        from tqdm.std import tqdm as text_tqdm

        return text_tqdm(**kwargs)


def _in_notebook() -> bool:
    try:
        from IPython import get_ipython  # type: ignore[attr-defined]
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and "IPKernelApp" in shell.config


class ProgressDisplay:
    """Shows a stream of ``ProgressEvent`` messages: steps with the overall percentage, then
    one bar over the epochs with the latest losses and accuracies.

    Where the output is neither a terminal nor a notebook (a log file, a pipe), it writes one
    plain line per step and per epoch instead of redrawing bars.
    """

    def __init__(
        self,
        *,
        file: IO[str] | None = None,
        description: str = "training",
        bars: bool | None = None,
        started: float | None = None,
    ) -> None:
        """``started``: when the operation started (``time.time()`` seconds), so the elapsed
        time shown counts from there rather than from attaching."""
        self._started = started
        self._file = file if file is not None else sys.stderr
        self._description = description
        self._overall: Any = None
        self._epochs: Any = None
        self.last_metrics: dict[str, float] = {}
        self._last_notice = ""
        if bars is None:
            isatty = getattr(self._file, "isatty", None)
            bars = bool(isatty and isatty()) or _in_notebook()
        self._bars = bars

    def __call__(self, event: common_pb2.ProgressEvent) -> None:
        kind = event.kind
        if kind == common_pb2.PROGRESS_KIND_HEARTBEAT:
            self._notice(event)
            return
        if kind == common_pb2.PROGRESS_KIND_UNSPECIFIED:
            return
        if not self._bars:
            self._line(event)
            return
        overall = self._overall_bar()
        if kind == common_pb2.PROGRESS_KIND_ACCEPTED and event.message:
            # where it runs, or why it still waits ("queued: 3 hosts busy, ...")
            message = event.message if len(event.message) <= 70 else event.message[:69] + "…"
            overall.set_description_str(f"{self._description}: {message}", refresh=False)
        if event.step:
            overall.set_description_str(
                f"{self._description}: step {event.step}/{event.total_steps} {event.step_name}",
                refresh=False,
            )
        if event.percent:
            overall.n = round(min(max(event.percent, 0.0), 100.0), 1)
        overall.refresh()
        if kind == common_pb2.PROGRESS_KIND_EPOCH and event.total_epochs:
            if self._epochs is None:
                self._epochs = _new_bar(
                    total=event.total_epochs,
                    desc="epochs",
                    unit="epoch",
                    file=self._file,
                    position=1,
                    dynamic_ncols=True,
                )
            self._epochs.n = event.epoch
            self.last_metrics = dict(event.metrics)
            shown = {k: f"{event.metrics[k]:.4f}" for k in _SHOWN_METRICS if k in event.metrics}
            self._epochs.set_postfix(shown, refresh=True)
        if kind in (
            common_pb2.PROGRESS_KIND_COMPLETED,
            common_pb2.PROGRESS_KIND_FAILED,
            common_pb2.PROGRESS_KIND_CANCELLED,
        ):
            if kind == common_pb2.PROGRESS_KIND_COMPLETED:
                overall.n = 100.0
            overall.set_description_str(
                f"{self._description}: {common_pb2.ProgressKind.Name(kind)[14:].lower()}"
            )
            self.close()

    def _notice(self, event: common_pb2.ProgressEvent) -> None:
        """A heartbeat that says something (why the model has not arrived, a queue on the
        cluster) is shown once, as a line above the bars; the idle ones are not."""
        text = event.message
        if not text or text == IDLE_HEARTBEAT or text == self._last_notice:
            return
        self._last_notice = text
        line = f"[{event.percent:5.1f}%] {self._description}: {text}"
        if self._bars and self._overall is not None:
            self._overall.write(line, file=self._file)
        else:
            self._file.write(line + "\n")
            self._file.flush()

    def _line(self, event: common_pb2.ProgressEvent) -> None:
        kind = event.kind
        if kind == common_pb2.PROGRESS_KIND_STEP_STARTED:
            text = f"step {event.step}/{event.total_steps} {event.step_name}"
        elif kind == common_pb2.PROGRESS_KIND_EPOCH:
            self.last_metrics = dict(event.metrics)
            shown = " ".join(
                f"{k}={event.metrics[k]:.4f}" for k in _SHOWN_METRICS if k in event.metrics
            )
            text = f"epoch {event.epoch}/{event.total_epochs} {shown}"
        elif kind in (
            common_pb2.PROGRESS_KIND_ACCEPTED,
            common_pb2.PROGRESS_KIND_COMPLETED,
            common_pb2.PROGRESS_KIND_FAILED,
            common_pb2.PROGRESS_KIND_CANCELLED,
        ):
            name = common_pb2.ProgressKind.Name(kind)[14:].lower()
            message = event.message.removeprefix(f"{name}: ")  # one prefix, never doubled
            text = f"{name}: {message}" if message else name
        else:
            return
        self._file.write(f"[{event.percent:5.1f}%] {self._description}: {text}\n")
        self._file.flush()

    def _overall_bar(self) -> Any:
        if self._overall is None:
            self._overall = _new_bar(
                total=100.0,
                desc=self._description,
                unit="%",
                file=self._file,
                position=0,
                dynamic_ncols=True,
                bar_format="{desc}: {percentage:3.0f}%|{bar}| [{elapsed}]",
            )
            if self._started is not None and hasattr(self._overall, "start_t"):
                self._overall.start_t = min(self._started, self._overall.start_t)
        return self._overall

    def close(self) -> None:
        for bar in (self._epochs, self._overall):
            if bar is not None:
                bar.refresh()
                bar.close()
        self._epochs = None
        self._overall = None


__all__ = ["ProgressDisplay"]
