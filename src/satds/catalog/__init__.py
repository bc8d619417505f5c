"""The catalog: Parquet tables (schemas in :mod:`.schema`) read through DuckDB views."""

from .schema import TABLES, schema
from .store import Catalog, connect, new_gen, new_id, now

__all__ = ["Catalog", "TABLES", "connect", "new_gen", "new_id", "now", "schema"]
