# %% [markdown]
# # entprobe from a notebook
#
# Probe a model layer by layer and read the results as pandas DataFrames.
# Cells are marked `# %%` (Jupyter, VS Code and `jupytext` open this file as a
# notebook; `python examples/notebook_quickstart.py` runs it top to bottom).
#
# Set `ENTPROBE_MODEL` to a checkpoint (e.g. `deepseek-community/Janus-Pro-1B`) to
# probe it; without it the notebook builds entprobe's tiny, randomly initialised
# Janus model offline, so it runs anywhere in seconds (its numbers mean nothing).

# %%
import os
import tempfile
from pathlib import Path

from PIL import Image

import entprobe

work = Path(os.environ.get("ENTPROBE_WORK") or tempfile.mkdtemp(prefix="entprobe-nb-"))
model_path = os.environ.get("ENTPROBE_MODEL")
if model_path is None:
    from entprobe.models.tiny import build_tiny

    model_path = str(build_tiny("janus", work / "tiny-janus"))

# %% [markdown]
# ## Load the model once, probe many times

# %%
model = entprobe.load_model(model_path)  # device="cuda" on a GPU
print(model.name, "with", model.n_layers, "decoder layers")

# %% [markdown]
# ## Prompt entropies per layer
#
# Prompts can be strings, PIL images, `(image, question)` pairs or prompt-set SPECs
# such as `"sample:t2i"` or `"t2i-corebench:~/data/T2I-CoReBench"`. Without a
# `store`, results are kept in memory.

# %%
result = entprobe.probe(
    model,
    [
        "A red cube to the left of two blue spheres.",
        "If it rained all night, draw the street the next morning.",
        (Image.new("RGB", (64, 64), (200, 40, 40)), "What colour is this square?"),
        "sample:t2i",
    ],
    levels="prompt",
    limit=4,
)
entropies = result.prompt_entropies(wide=True)  # rows: prompts; columns: layer 0..N
print(entropies)

# %% [markdown]
# ## Responses: the conditional entropy proxy per layer, into a store file
#
# A store file can be resumed (the same call skips what is done) and read by the
# CLI (`entprobe status`, `entprobe report`).

# %%
store = work / "results.duckdb"
generated = entprobe.probe(
    model,
    "sample:t2i",
    levels="prompt,text-gen",
    store=store,
    limit=3,
    generation={"max_new_tokens": 4},
)
proxies = entprobe.proxies(store, level="text-gen")
proxies[["sample_id", "layer", "rel_depth", "value"]].head()

# %%
entprobe.sample_table(store)[["sample_id", "level", "status", "generated_text"]]

# %%
entprobe.failures(store)  # failed samples with their recorded error (none here)

# %% [markdown]
# ## The report's tables and figures

# %%
entprobe.embedding_entropy_table(store, n_boot=200)

# %%
figure = entprobe.plot_prompt_types(store, modality="text")
figure.savefig(work / "prompt_types.png")

# %%
report = entprobe.write_report(store, work / "report")
print("report:", report)
