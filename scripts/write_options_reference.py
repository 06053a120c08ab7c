"""Write docs/options.md from the option declarations (run after changing an option).

    python scripts/write_options_reference.py

tests/test_options_spec.py fails when the page and the declarations disagree.
"""

from pathlib import Path

from entprobe.cli._options import options_reference

if __name__ == "__main__":
    out = Path(__file__).resolve().parents[1] / "docs" / "options.md"
    out.write_text(options_reference() + "\n")
    print(f"wrote {out}")
