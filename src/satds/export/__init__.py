"""nnU-Net v2 export: task recipes, partial-label policies, the pseudo-label merge."""

from .cases import ExportPlan, Unit, case_id_for, plan_export
from .nnunet import ExportResult, export_nnunet, read_provenance
from .pseudolabel import make_pseudolabels
from .recipe import Recipe, ResolvedRecipe, adhoc_recipe, find_recipe, read_recipe

__all__ = [
    "ExportPlan",
    "ExportResult",
    "Recipe",
    "ResolvedRecipe",
    "Unit",
    "adhoc_recipe",
    "case_id_for",
    "export_nnunet",
    "find_recipe",
    "make_pseudolabels",
    "plan_export",
    "read_provenance",
    "read_recipe",
]
