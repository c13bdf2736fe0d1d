"""The run report: plots, TensorBoard images, ``REPORT.md`` and a standalone ``REPORT.html``.

Everything in the report is read from the run's own files (``metrics.json``, ``history.json``,
``config.json``, ``evaluation.json``, ``predictions.npz``, ``export/metadata.json``) and from
the other runs beside it; no number is typed by hand. :func:`finalize_run` is what the Trainer
calls at the end of a run and what ``cifar report RUN_DIR`` runs again.

:class:`cifar.run_files.RunFiles` reads the run directory. One module per concern: ``runs``
(the other runs beside it), ``artefacts`` (its exported files), ``figures`` (the charts),
``tensorboard`` (logging them), ``markdown`` and ``formatting`` (the text of ``REPORT.md``),
``html`` (``REPORT.html``) and ``finalize`` (all of them for one run).
"""

from cifar.report.artefacts import export_artefacts
from cifar.report.figures import PLOTS_DIR, make_plots
from cifar.report.finalize import REPORT_HTML, REPORT_MD, finalize_run
from cifar.report.html import write_html
from cifar.report.markdown import dataset_name, render_markdown
from cifar.report.runs import RunSummary, collect_runs
from cifar.report.tensorboard import TENSORBOARD_SUBDIR, log_to_tensorboard
from cifar.run_files import EXPORT_DIR, RunFiles

__all__ = [
    "EXPORT_DIR",
    "PLOTS_DIR",
    "REPORT_HTML",
    "REPORT_MD",
    "TENSORBOARD_SUBDIR",
    "RunFiles",
    "RunSummary",
    "collect_runs",
    "dataset_name",
    "export_artefacts",
    "finalize_run",
    "log_to_tensorboard",
    "make_plots",
    "render_markdown",
    "write_html",
]
