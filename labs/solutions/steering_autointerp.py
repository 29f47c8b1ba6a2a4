"""Solutions to labs/steering_autointerp.py (for instructors)."""

# %% tags=["exercise:half_cosine"]
a, b = vectors["first half"].vector_D, vectors["second half"].vector_D  # noqa: F821 (defined in the lab)
half_cosine = float(a @ b / (a.norm() * b.norm()))


# %% tags=["exercise:judge"]
class KeywordJudge:
    def complete(self, messages, max_tokens=None) -> str:
        text = messages[-1]["content"]
        word = text.split("\n", 1)[0].split('"')[1]  # Explanation: the token "word"
        lines = [line.split(": ", 1)[1] for line in text.splitlines() if line.startswith("Example ")]
        return "[" + ", ".join("1" if word in line else "0" for line in lines) + "]"
