"""The data audit (``cifar audit``): what is wrong with a photo folder, found and reported.

One job per module, as cleanlab has one issue manager per problem: :mod:`.inventory` lists and
decodes every photo (every split folder), :mod:`.features` computes frozen backbone features
(cached), :mod:`.probabilities` out-of-fold predicted probabilities, then each check finds one
kind of issue (:mod:`.duplicates`, :mod:`.label_issues`, :mod:`.near_copies`,
:mod:`.outliers`, :mod:`.overlap`); :mod:`.findings` gathers them per file and
:mod:`.report` writes ``AUDIT.md``, ``audit.html`` and ``audit.csv``. The audit reads the
folder and never moves, edits or deletes a photo.
"""

from __future__ import annotations

from cifar.audit.run import AuditSettings, run_audit

__all__ = ["AuditSettings", "run_audit"]
