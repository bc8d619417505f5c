"""``satds ontology``: validate, resolve, show and browse the label ontology."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from .app import app, data

if TYPE_CHECKING:
    from ..ontology import Ontology

ontology_app = typer.Typer(help="Validate, resolve and browse the label ontology.", no_args_is_help=True)
app.add_typer(ontology_app, name="ontology")


@ontology_app.callback()
def _options(
    ctx: typer.Context,
    file: Annotated[
        Optional[Path],
        typer.Option("--file", "-f", envvar="SATDS_ONTOLOGY", show_default=False,
                     help="Ontology file to use instead of the project's label_ontology.yaml."),
    ] = None,
) -> None:
    ctx.ensure_object(dict)["ontology_file"] = file


def _load(ctx: typer.Context) -> "Ontology":
    from ..ontology import load_ontology

    return load_ontology((ctx.obj or {}).get("ontology_file"))


@ontology_app.command("validate")
def validate(ctx: typer.Context) -> None:
    """Check the ontology: acyclic, unique ids and names, parents exist, laterality pairs, partitions, lesions."""
    from .app import console, fail

    onto = _load(ctx)
    findings = onto.validate()
    for f in findings:
        console.print(str(f), highlight=False, soft_wrap=True)
    if findings:
        raise fail(f"{len(findings)} problem(s) in {onto.path}")
    console.print(f"ontology {onto.version}: {len(onto)} concepts, valid", highlight=False)


@ontology_app.command("resolve")
def resolve(
    ctx: typer.Context,
    names: Annotated[Optional[list[str]], typer.Argument(help="Names to resolve; read one per line from stdin when none.",
                                                          show_default=False)] = None,
) -> None:
    """Print NAME<TAB>concept-id for each name (case, underscore, spacing and ct_/mri_/pet_ prefix insensitive)."""

    from ..errors import OntologyError

    from .app import err_console

    onto = _load(ctx)
    if not names:
        names = [line.strip() for line in sys.stdin if line.strip()]
    failed = []
    for name in names:
        try:
            typer.echo(f"{name}\t{onto.resolve(name).id}")
        except OntologyError as e:
            failed.append(str(e))
    if failed:
        for msg in failed:
            err_console.print(f"[red]error:[/red] {data(msg)}", highlight=False, soft_wrap=True)
        err_console.print(f"{len(failed)} of {len(names)} name(s) did not resolve", highlight=False)
        raise typer.Exit(1)


def _ref(onto: "Ontology", cid: str) -> str:
    c = onto.concepts.get(cid)
    return f"{cid} ({c.name})" if c is not None else cid


@ontology_app.command("show")
def show(ctx: typer.Context, id_or_name: Annotated[str, typer.Argument(help="Concept id, name or synonym.")]) -> None:
    """Everything about one concept: names, region, kind, hierarchy, partitions, laterality, lesions, codes."""

    onto = _load(ctx)
    c = onto.get(id_or_name)
    rows: list[tuple[str, str]] = [
        ("id", c.id),
        ("name", c.name),
        ("synonyms", ", ".join(c.synonyms) or "-"),
        ("region", c.region),
        ("kind", c.kind + (" (variant)" if c.variant else "")),
    ]
    if c.laterality:
        rows.append(("laterality", c.laterality + (f", counterpart {_ref(onto, c.counterpart)}" if c.counterpart
                                                   else ", no counterpart")))
    rows.append(("parents", ", ".join(f"{_ref(onto, p.id)} [{p.rel.value}]" for p in c.parents) or "- (root)"))
    children = onto.children(c.id)
    rows.append(("children", ", ".join(f"{_ref(onto, k)} [{onto.graph.edges[k, c.id]['rel']}]" for k in children)
                 or "-"))
    for i, part in enumerate(c.partitions, 1):
        rows.append((f"partition {i}", " + ".join(part)))
    if c.located_in:
        rows.append(("located in", _ref(onto, c.located_in)))
    if c.kind == "anatomy":
        direct = onto.lesions_in(c.id)
        rows.append(("lesions", ", ".join(_ref(onto, x) for x in direct) or "-"))
        within = [x for x in sorted(onto.organ_with_lesions(c.id, onto.concepts), key=onto.order.get) if x not in direct]
        if within:
            rows.append(("lesions in parts", ", ".join(f"{x} (in {onto[x].located_in})" for x in within)))
    rows.append(("codes", ", ".join(f"{k} {v}" for k, v in c.codes.items()) or "-"))
    if c.note:
        rows.append(("note", c.note))
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        typer.echo(f"{k + ':':<{width + 1}} {v}")


@ontology_app.command("tree")
def tree(
    ctx: typer.Context,
    id_or_name: Annotated[Optional[str], typer.Argument(help="Start here; all roots when omitted.",
                                                        show_default=False)] = None,
    depth: Annotated[Optional[int], typer.Option("--depth", "-d", help="Levels below the start to show.",
                                                 show_default=False)] = None,
) -> None:
    """The hierarchy as an indented tree (children under parents; a concept with two parents appears twice)."""

    onto = _load(ctx)
    if id_or_name is None:
        starts = onto.roots()
    else:
        starts = [onto.get(id_or_name).id]

    def label(cid: str, rel: str | None) -> str:
        c = onto[cid]
        tags = [t for t in (rel if rel == "is_a" else None, "lesion" if c.kind == "lesion" else None,
                            "variant" if c.variant else None) if t]
        return f"{c.name} [{cid}]" + (f" ({', '.join(tags)})" if tags else "")

    def walk(cid: str, prefix: str, level: int) -> None:
        if depth is not None and level >= depth:
            return
        kids = onto.children(cid)
        for i, k in enumerate(kids):
            last = i == len(kids) - 1
            typer.echo(prefix + ("└── " if last else "├── ") + label(k, onto.graph.edges[k, cid]["rel"]))
            walk(k, prefix + ("    " if last else "│   "), level + 1)

    for s in starts:
        typer.echo(label(s, None))
        walk(s, "", 0)
