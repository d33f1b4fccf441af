"""The web viewer: reads runs through the store's reader; never imports capture or JAX."""

from ._app import Viewer as Viewer
from ._app import find_runs as find_runs
from ._app import free_port as free_port
from ._app import serve as serve
from ._saliency import feature_map as feature_map
from ._saliency import saliency_overlay as saliency_overlay
from ._saliency import write_png as write_png
