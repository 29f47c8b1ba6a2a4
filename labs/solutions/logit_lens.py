"""Solutions to labs/logit_lens.py (for instructors)."""

# %% tags=["exercise:first"]
first = next(i for i, row in enumerate(grid.top_tokens)  # noqa: F821 (defined in the lab)
             if row[-1][0] == grid.final_tokens[-1][0])  # noqa: F821
