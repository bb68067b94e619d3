"""Data: readers, built-in datasets, schema inference and preprocessing, targets.

Submodules are imported by name (``from archtune.data.readers import load_table``); this
package imports nothing eagerly, so reading a file never pays for importing PyTorch.
"""
