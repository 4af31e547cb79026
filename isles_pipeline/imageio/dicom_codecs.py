"""Which package decodes which compressed transfer syntax, so a failed decode names what to install.

pydicom decodes RLE itself (pylibjpeg-rle, when installed, ten times faster: pydicom then prefers it); the JPEG
family goes through plugins it finds at run time (all are dependencies of
this project, but an environment built another way may lack one, and pydicom's own message lists every plugin
it tried). JPEG lossless and baseline: pylibjpeg-libjpeg; JPEG-LS: pyjpegls (or pylibjpeg-libjpeg);
JPEG 2000: pylibjpeg-openjpeg.
"""
from __future__ import annotations

from typing import Optional

_PLUGINS = {  # transfer syntax UID prefix -> the packages that decode it (any one is enough)
    "1.2.840.10008.1.2.4.5": ("pylibjpeg-libjpeg",),  # JPEG baseline / extended
    "1.2.840.10008.1.2.4.57": ("pylibjpeg-libjpeg",),  # JPEG lossless
    "1.2.840.10008.1.2.4.70": ("pylibjpeg-libjpeg",),  # JPEG lossless, first-order prediction
    "1.2.840.10008.1.2.4.80": ("pyjpegls", "pylibjpeg-libjpeg"),  # JPEG-LS lossless
    "1.2.840.10008.1.2.4.81": ("pyjpegls", "pylibjpeg-libjpeg"),  # JPEG-LS near-lossless
    "1.2.840.10008.1.2.4.9": ("pylibjpeg-openjpeg",),  # JPEG 2000 (lossless and lossy)
}


def installed_plugins() -> set[str]:
    """The decoder packages that import in this environment."""
    found = set()
    try:
        import libjpeg  # noqa: F401
        import pylibjpeg  # noqa: F401
        found.add("pylibjpeg-libjpeg")
    except ImportError:
        pass
    try:
        import openjpeg  # noqa: F401
        found.add("pylibjpeg-openjpeg")
    except ImportError:
        pass
    try:
        import jpeg_ls  # noqa: F401
        found.add("pyjpegls")
    except ImportError:
        pass
    try:
        import rle  # noqa: F401
        found.add("pylibjpeg-rle")
    except ImportError:
        pass
    return found


def missing_decoder(transfer_syntax: str) -> Optional[str]:
    """'pip install X' advice when no installed package decodes `transfer_syntax`; None when one does (or none
    is needed)."""
    needed = next((packages for prefix, packages in _PLUGINS.items() if str(transfer_syntax).startswith(prefix)), ())
    if not needed or installed_plugins() & set(needed):
        return None
    return f"no decoder for transfer syntax {transfer_syntax} is installed: pip install {needed[0]}"
