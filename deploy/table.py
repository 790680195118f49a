"""The template's table, written from ocrlab's table layout (`python -m deploy.table [--check]`).

The block between the BEGIN and END lines of deploy/template.yaml is generated; everything else
in the template is written by hand. `make package` rewrites the block, and a test fails while it
differs from what ocrlab.store.layout describes.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from ocrlab.store.layout import LAYOUT, TableLayout

TEMPLATE = Path(__file__).resolve().parent / "template.yaml"
BEGIN = "  # BEGIN table: generated from ocrlab/store/layout.py by `python -m deploy.table`; edit the layout, not this"
END = "  # END table"


def table_block(layout: TableLayout = LAYOUT) -> str:
    """The `Table` resource as template text, indented to sit under `Resources:`."""
    resource = {"Type": "AWS::DynamoDB::Table",
                # The records are the pipeline's history: deleting or replacing the stack keeps them.
                "DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain",
                "Properties": layout.cloudformation_properties()}
    text = yaml.safe_dump({"Table": resource}, sort_keys=False, default_flow_style=False, width=120)
    return "".join(f"  {line}\n" for line in text.splitlines())


def render(template: str, layout: TableLayout = LAYOUT) -> str:
    """The template text with its generated block replaced."""
    head, begin, rest = template.partition(BEGIN + "\n")
    _, end, tail = rest.partition(END + "\n")
    if not begin or not end:
        raise ValueError(f"the template has no generated table block ({BEGIN.strip()!r} ... {END.strip()!r})")
    return f"{head}{begin}{table_block(layout)}{end}{tail}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.table", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the template's table is not current")
    parser.add_argument("--template", type=Path, default=TEMPLATE)
    args = parser.parse_args(argv)
    current = args.template.read_text(encoding="utf-8")
    wanted = render(current)
    if wanted == current:
        print(f"{args.template}: table is current")
        return 0
    if args.check:
        print(f"{args.template}: table differs from ocrlab/store/layout.py; run `python -m deploy.table`",
              file=sys.stderr)
        return 1
    args.template.write_text(wanted, encoding="utf-8")
    print(f"{args.template}: table rewritten from the layout")
    return 0


if __name__ == "__main__":
    sys.exit(main())
