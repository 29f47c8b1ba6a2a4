"""Solutions to labs/crosslingual.py (for instructors)."""

# %% tags=["exercise:peak"]
peak = int((result.p_english_L - result.p_target_L).argmax())  # noqa: F821 (defined in the lab)
