"""Solutions to labs/dyck.py (for instructors; `python scripts/lab_notebooks.py --solutions dyck`)."""

# %% tags=["exercise:depths"]
def depths(text: str) -> list[int]:
    out, depth = [], 0
    for char in text:
        depth += 1 if char == "(" else -1
        out.append(depth)
    return out


# %% tags=["exercise:identified"]
identified = max(tables["mean"], key=lambda r: r["cost_points"])["head"]  # noqa: F821 (defined in the lab)
