"""Solutions to labs/probes_answerability.py (for instructors)."""

# %% tags=["exercise:contrast"]
def mean_difference_fit(X_ND, y_N):
    mean_pos, mean_neg = X_ND[y_N == 1].mean(0), X_ND[y_N == 0].mean(0)
    direction = mean_pos - mean_neg
    threshold = float((mean_pos + mean_neg) @ direction / 2)
    return lambda X: X @ direction - threshold
