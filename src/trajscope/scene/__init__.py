"""The scene room: a MuJoCo model drawn in a viser scene, usable without the viewer.

- :class:`Stage`: what one server shows and from where: the environments in a layout, the
  light, the camera's framing and follow, places beside them, a ghost for comparisons;
- :class:`EnvScene`: environments of one model as batched meshes (randomised colours and
  sizes per environment), posed by :class:`trajscope.sim.Kinematics`, with contacts;
- geometry: MuJoCo geoms to meshes and textures (:func:`geom_mesh`);
- framing: grid offsets, world boxes of posed geoms, a camera that frames a box;
- recording: posed environments as compact blocks a browser plays (:func:`encode_block`).

The viewer, its Compare panel and the single-file HTML export all draw through the stage; numpy, mujoco
and viser only.
"""

from ._envs import EnvScene as EnvScene
from ._framing import PANEL_PX as PANEL_PX
from ._framing import VIEW_DIRECTION as VIEW_DIRECTION
from ._framing import bounds as bounds
from ._framing import framing as framing
from ._framing import grid_offsets as grid_offsets
from ._framing import project as project
from ._framing import quat_to_mat as quat_to_mat
from ._geometry import PLANE as PLANE
from ._geometry import GeomMesh as GeomMesh
from ._geometry import geom_mesh as geom_mesh
from ._recording import BLOCK_STEPS as BLOCK_STEPS
from ._recording import decode_block as decode_block
from ._recording import encode_block as encode_block
from ._stage import GHOST_TINT as GHOST_TINT
from ._stage import Stage as Stage
