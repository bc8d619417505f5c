"""The ontology file's schema: what one concept may say, validated with pydantic."""

from __future__ import annotations

import re
from enum import Enum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

#: SAT-DS's nine body regions, in the paper's order.
REGIONS = (
    "brain",
    "head and neck",
    "upper limb",
    "thorax",
    "spine",
    "abdomen",
    "lower limb",
    "pelvis",
    "whole body",
)

ID_RE = re.compile(r"^[a-z][a-z0-9_]*$")


class Relation(str, Enum):
    is_a = "is_a"
    part_of = "part_of"


class Parent(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    rel: Relation = Relation.part_of


class Concept(BaseModel):
    """One anatomical structure or lesion, independent of modality.

    ``partitions`` lists ways to cut this concept into disjoint children whose union is exactly it; only
    a concept with a partition may be derived by merging masks. ``variant`` marks anatomical variants (L6,
    T13) that an annotation protocol may not mention without blocking a partition: the union of the other
    members is still exact when the variant is simply absent from the patient.
    """

    model_config = ConfigDict(extra="forbid")

    id: str
    name: str
    synonyms: list[str] = Field(default_factory=list)
    region: str
    kind: Literal["anatomy", "lesion"] = "anatomy"
    laterality: Literal["left", "right"] | None = None
    counterpart: str | None = None
    parents: list[Parent] = Field(default_factory=list)
    partitions: list[list[str]] = Field(default_factory=list)
    located_in: str | None = None
    variant: bool = False
    codes: dict[str, str] = Field(default_factory=dict)
    note: str | None = None

    @field_validator("id")
    @classmethod
    def _slug(cls, v: str) -> str:
        if not ID_RE.match(v):
            raise ValueError(f"concept id {v!r} must be a lower-case slug ([a-z][a-z0-9_]*)")
        return v

    @field_validator("region")
    @classmethod
    def _region(cls, v: str) -> str:
        if v not in REGIONS:
            raise ValueError(f"region {v!r} is not one of {', '.join(REGIONS)}")
        return v

    @field_validator("codes")
    @classmethod
    def _codes(cls, v: dict[str, str]) -> dict[str, str]:
        allowed = {"FMA", "SNOMEDCT", "RADLEX", "UMLS"}
        bad = set(v) - allowed
        if bad:
            raise ValueError(f"unknown code system(s) {sorted(bad)}; use {sorted(allowed)}")
        return v


class ChangelogEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: str
    date: str
    changes: list[str]


class OntologyFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: str
    changelog: list[ChangelogEntry]
    concepts: list[Concept]
