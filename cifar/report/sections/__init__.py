"""The sections of ``REPORT.md``, one module each, named after the question it answers.

Each module has ``render(ctx: ReportContext) -> str`` (``""`` when the run has nothing for it,
e.g. an older run without calibration); :mod:`cifar.report.markdown` puts them in order:

``title``, ``objective``, ``dataset``, ``data_checks`` (duplicates, near-copies, what was left
out), ``architecture``, ``training``, ``evaluation``, ``calibration`` (ECE, NLL, Brier, T),
``confidence`` ("not sure", coverage, OOD AUROC), ``top_losses``, ``comparison`` (the other
runs), ``justification`` (transfer learning in numbers), ``deployment`` (exported files) and
``files``.
"""

from cifar.report.sections.context import ReportContext

__all__ = ["ReportContext"]
