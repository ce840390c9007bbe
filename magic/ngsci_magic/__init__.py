"""`%ngsci`: the ngsci service from a notebook or an IPython console.

The package is the IPython extension (`%load_ext ngsci_magic`); ngsci's single-user environment
loads it in every kernel by itself. The magic itself is in `ngsci_magic.magic`.
"""

from .magic import NgsciMagics, load_ipython_extension, unload_ipython_extension

__version__ = "0.1.0"

__all__ = ["NgsciMagics", "__version__", "load_ipython_extension", "unload_ipython_extension"]
