"""Solutions to labs/sae_smollm2.py (for instructors)."""

# %% tags=["exercise:fvu"]
with torch.no_grad():  # noqa: F821 (defined in the lab)
    x_hat = run.sae.decode(run.sae.encode(x_BD))  # noqa: F821
my_fvu = float(((x_BD - x_hat) ** 2).sum() / ((x_BD - x_BD.mean(0)) ** 2).sum())  # noqa: F821
