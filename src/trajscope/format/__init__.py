"""The format room: the run directory's one definition, numpy only.

- :mod:`.schema`: names, groups, layouts, fixed arrays, the format version;
- :mod:`.documents`: every JSON document's build/parse pair (``run.json``, ``capture.json``,
  the live stream's files, ``analysis/analysis.json``), each field validated on read;
- :mod:`.codecs`: array files (``.npy``, zlib-shuffle, zlib-shuffle-delta);
- :mod:`.images`: images stored as uint8, observations as float16;
- :mod:`.summary`: the summary each manifest carries (returns, episode lengths, the first
  non-finite value);
- :mod:`.errors`: :class:`FormatError` and the store's warning.

The store (:mod:`trajscope.store`) reads and writes files through these; nothing here
touches a filesystem. ``docs/format.md`` describes the same for people, and
``tests/test_format_doc.py`` holds the two together.
"""

from . import codecs as codecs
from . import documents as documents
from . import errors as errors
from . import images as images
from . import schema as schema
from . import summary as summary
from .errors import FormatError as FormatError
from .errors import UnsupportedVersionError as UnsupportedVersionError
from .schema import FORMAT_VERSION as FORMAT_VERSION
