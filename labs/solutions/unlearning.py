"""Solutions to labs/unlearning.py (for instructors)."""

from interplab.unlearning import NOT_FORGOTTEN, REMOVED, SUPPRESSED, ArmResult, VerdictConfig

# %% tags=["exercise:recovery"]
chance = result.chance_held_out  # noqa: F821 (defined in the lab)
recovery = (max(a for _, a in result.relearn) - chance) / (organism_em - chance)  # noqa: F821
recovery_at_step_0 = (result.relearn[0][1] - chance) / (organism_em - chance)  # noqa: F821


# %% tags=["exercise:verdict"]
def my_verdict(arm: ArmResult) -> str:
    cfg = VerdictConfig()
    if arm.metrics["forget_qa_em"] > arm.chance + cfg.margin:
        return NOT_FORGOTTEN
    bar = arm.chance_held_out + cfg.margin
    relearnt = any(a >= bar for _, a in arm.relearn)
    removed_direction = any(a >= bar for _, a in arm.direction)
    probe = arm.probe_accuracy if arm.probe_accuracy is not None else max((a for _, a in arm.probe), default=None)
    probed = arm.probe_chance is not None and probe is not None and probe >= arm.probe_chance + cfg.probe_margin
    return SUPPRESSED if relearnt or removed_direction or probed else REMOVED
