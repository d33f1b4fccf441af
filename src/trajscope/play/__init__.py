"""Play: a checkpoint's policy run on the host from any captured state (needs JAX and brax).

    from trajscope.play import Player
    player = Player(trajscope.open_run(path), env)   # env: as trained, impl='jax' on CPU
    player.use_policy(-1)                              # any capture's checkpoint; swap any time
    player.start(capture, env_index, t)                # a captured frame
    frame = player.step()                              # one control step

See docs/play.md.
"""

from ._player import Frame, Player, PlayUnavailable, check_env, load_env, perturbable, trained_impl

__all__ = ["Frame", "PlayUnavailable", "Player", "check_env", "load_env", "perturbable", "trained_impl"]
