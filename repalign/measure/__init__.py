"""Floor 1: the measure (alignment, targets), the theory of a linear learner on a spectrum, and transferability scores.

NumPy and SciPy only: nothing here imports torch at import time.
"""
