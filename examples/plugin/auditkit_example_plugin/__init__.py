"""An example auditkit plugin: one check, discovered through the ``auditkit.checks`` entry point."""

from __future__ import annotations

from auditkit import Metric, Outcome, RunContext, check


@check(
    id="EX-SIZE-001",
    area="data",
    title="The training split is large enough to learn from",
    requires=("train",),
    severity="low",
    nist_ai_rmf=("MEASURE 2.1",),
    tags=("example", "data"),
)
def training_set_size(ctx: RunContext, /, *, min_rows: int = 100) -> Outcome:
    """Fails when the training split has fewer rows than ``min_rows``.

    Parameters
    ----------
    min_rows: smallest acceptable number of training rows.
    """
    n = len(ctx.dataset("train"))
    metric = Metric(
        "train_rows", n, threshold=min_rows, direction="higher", description="rows in the training split"
    )
    return Outcome.from_metrics([metric], summary=f"{n} training rows (minimum {min_rows})")
