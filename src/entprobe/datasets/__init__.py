"""Prompt sets: loaders for benchmark files, uniform prompt records, length buckets
and the bundled sample sets.

A prompt set is named by a SPEC string, ``FORMAT:PATH`` (see :func:`list_formats`)::

    >>> from entprobe.datasets import load_prompts
    >>> prompts = load_prompts("sample:mmbench")
    >>> record = prompts.records[0]
    >>> record.modality, record.category
    ('image', 'Coarse')
    >>> record.load_image().size  # decoded only now
    (96, 96)

Rows that cannot be used are skipped and counted, never silently dropped:
``prompts.skipped`` lists them and ``prompts.report()`` summarises why.

What a notebook passes as prompts (strings, PIL images, dicts, SPECs, prompt sets)
becomes prompt sets through :func:`prompt_sets`.
"""

from ._buckets import BUCKETS, count_tokens, length_buckets, tercile_thresholds
from ._images import DEFAULT_MAX_PIXELS
from ._inline import INLINE_DATASET, prompt_sets, split_by_modality
from ._mmbench import L2_CATEGORIES as MMBENCH_L2_CATEGORIES
from ._records import SKIP_KINDS, PromptRecord, PromptSet, SkippedRow
from ._registry import FormatInfo, list_formats, load_prompts, parse_spec
from ._t2i_corebench import DIMENSIONS as T2I_DIMENSIONS

__all__ = [
    "PromptRecord",
    "PromptSet",
    "SkippedRow",
    "load_prompts",
    "prompt_sets",
    "split_by_modality",
    "INLINE_DATASET",
    "length_buckets",
    "list_formats",
    "FormatInfo",
    "parse_spec",
    "count_tokens",
    "tercile_thresholds",
    "BUCKETS",
    "DEFAULT_MAX_PIXELS",
    "SKIP_KINDS",
    "T2I_DIMENSIONS",
    "MMBENCH_L2_CATEGORIES",
]
