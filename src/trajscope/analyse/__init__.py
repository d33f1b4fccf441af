"""Analyses of captured rollouts: arrays in, arrays out. numpy only; imports no other room.

    from trajscope import analyse
    analyse.episode_returns(reward, done)        # (T, E) -> (E,)

The store calls :func:`summarize` to write each capture's summary; the viewer and the
command line call the rest on arrays they read through the store.
"""

from ._summary import episode_lengths as episode_lengths
from ._summary import episode_returns as episode_returns
from ._summary import first_nonfinite as first_nonfinite
from ._summary import summarize as summarize
