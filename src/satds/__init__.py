"""satds: public 3D medical segmentation datasets as one clean, queryable, leakage-free collection."""

__version__ = "0.1.0"
