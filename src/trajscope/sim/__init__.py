"""The simulation room: everything about a MuJoCo model and its state, shared by capture,
play, serve and export (none of them imports another for it).

- the physics state inside an environment's state, and the model it simulates
  (:func:`physics`, :func:`base_model`, :func:`restore`, ...), for MJX and brax;
- a model with one environment's randomised fields (:func:`apply_model_fields` for an
  ``MjModel``, :func:`with_fields` for MJX and brax models);
- kinematics: where each geom of many environments is, and their contacts (:class:`Kinematics`);
- offscreen rendering (:func:`renderer`, :func:`camera`).

numpy and mujoco at import; JAX only inside the functions that restore JAX states.
"""

from ._fields import apply_model_fields as apply_model_fields
from ._fields import with_fields as with_fields
from ._kinematics import Kinematics as Kinematics
from ._kinematics import mat_to_wxyz as mat_to_wxyz
from ._render import RenderError as RenderError
from ._render import camera as camera
from ._render import floating_root as floating_root
from ._render import renderer as renderer
from ._state import StateError as StateError
from ._state import base_model as base_model
from ._state import mj_model as mj_model
from ._state import perturbable as perturbable
from ._state import physics as physics
from ._state import physics_qpos as physics_qpos
from ._state import physics_qvel as physics_qvel
from ._state import randomized_fields as randomized_fields
from ._state import restore as restore
from ._state import set_model as set_model
from ._state import set_xfrc as set_xfrc
from ._state import swap_model as swap_model
