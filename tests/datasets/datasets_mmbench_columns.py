"""The VLMEvalKit MMBench TSV columns, shared by the dataset tests (a module of its own:
``conftest`` is not importable by name when several test folders have one)."""

MMBENCH_COLUMNS = [
    "index",
    "question",
    "hint",
    "A",
    "B",
    "C",
    "D",
    "answer",
    "category",
    "image",
    "source",
    "l2-category",
    "comment",
    "split",
]
