"""Architectures whose keys load real checkpoints, and the project's own small models.

One module per family; each helper adds its import line below.
"""
