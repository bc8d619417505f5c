"""``satds ontology``: validate, resolve, show and browse the label ontology."""

from __future__ import annotations

import typer

from .app import app

ontology_app = typer.Typer(help="Validate, resolve and browse the label ontology.", no_args_is_help=True)
app.add_typer(ontology_app, name="ontology")


@ontology_app.command("validate")
def validate() -> None:
    """Check the ontology: acyclic, unique ids and names, parents exist, laterality pairs, partitions."""
    from ..ontology import load_ontology

    from .app import console, fail

    onto = load_ontology()
    findings = onto.validate()
    for f in findings:
        console.print(str(f), highlight=False)
    if findings:
        raise fail(f"{len(findings)} problem(s) in {onto.path}")
    console.print(f"ontology {onto.version}: {len(onto)} concepts, valid")
