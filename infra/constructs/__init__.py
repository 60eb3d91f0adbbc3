"""One construct per capability (DESIGN.md §2, §8)."""
