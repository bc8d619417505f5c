"""One :class:`~satds.errors.ExportError` listing every problem an export or a pseudo-label merge found."""

from __future__ import annotations

from ..errors import ExportError


def export_error(recipe, problems: list[str], what: str | None = None) -> ExportError:
    """One error listing every problem (``.problems`` keeps them as a list); ``what``: the export's name
    (default: the recipe's nnU-Net folder)."""
    head = f"cannot export {what or recipe.folder_name}: {len(problems)} problem(s)"
    err = ExportError(head + "\n" + "\n".join(f"  - {p}" for p in problems))
    err.problems = list(problems)  # type: ignore[attr-defined]
    return err
