"""A corpus of hostile run directories: each one a class of attack on whoever opens it.

Every run here is made by the tests in a fraction of a second (small files; the "huge"
ones are sparse files or zlib bombs of a few MB). ``make_corpus(root)`` writes them all
beside one good run and returns ``{name: what it attacks}``. ``tests/test_untrusted.py``
reads each under an address-space limit and a timeout, expecting a ``FormatError`` (or a
clean read, for the escaping cases) and the viewer still serving the good run;
``tests/fuzz_reader.py`` draws from the same attacks as mutations.
"""

from __future__ import annotations

import functools
import json
import os
import zlib
from pathlib import Path

HOSTILE = (
    '<img src=x onerror="window.__pwned=(window.__pwned||0)+1">'
    '<iframe srcdoc="<script>parent.__pwned=1</script>"></iframe>'
    "<script>window.__pwned=1</script>"
    "[click](javascript:window.__pwned=1) **`|<svg onload=window.__pwned=1>"
)
"""Text that runs script wherever it is rendered as HTML or markdown with raw HTML."""

MARKER = "PWNMARK"
"""Every hostile string starts with it: the page shows it as text when escaping works."""


@functools.lru_cache(maxsize=4)
def zeros_bomb(nbytes: int) -> bytes:
    """A zlib stream of ``nbytes`` zero bytes (about a thousandth of that on disk)."""
    z = zlib.compressobj(1)
    chunk = bytes(2**22)
    return b"".join(z.compress(chunk) for _ in range(nbytes // len(chunk))) + z.flush()


def hostile(tag: str) -> str:
    return f"{MARKER}-{tag} {HOSTILE}"


def _good(root: Path, name: str, model, **writer_kw) -> Path:
    from conftest import all_kinds
    from trajscope.store import RunWriter

    with RunWriter(root, name=name, model=model, strict=True, env_name="fixture", **writer_kw) as w:
        w.add_capture(step=10, **all_kinds(model, T=6, E=3, seed=1))
    return root / name


def _manifest(run: Path) -> Path:
    (cdir,) = (run / "captures").iterdir()
    return cdir / "capture.json"


def _edit_json(path: Path, fn) -> None:
    doc = json.loads(path.read_text())
    fn(doc)
    path.write_text(json.dumps(doc))


def _array_file(run: Path, name: str = "reward") -> Path:
    m = _manifest(run)
    (e,) = [e for e in json.loads(m.read_text())["arrays"] if e["group"] == "" and e["key"] == name]
    return m.parent / e["file"]


def strings_run(root: Path, model) -> Path:
    """Hostile text in every string a run can carry: names, env and algorithm, tags,
    config keys and values, versions, writer, metric/obs/info/params keys, attrs, a
    body name of the model, analysis notes; and a damaged capture whose error quotes it."""
    import mujoco

    from conftest import XML, all_kinds
    from trajscope.store import RunWriter, write_analysis

    xml = XML.replace('name="torso"', f'name="{MARKER}-body &lt;img src=x onerror=window.__pwned=1&gt;"')
    m = mujoco.MjModel.from_xml_string(xml)
    kw = all_kinds(m, T=6, E=3, seed=1)
    kw["metrics"] = {**kw["metrics"], hostile("metric")[:200]: kw["metrics"]["height"]}
    kw["obs"] = {**kw["obs"], hostile("obs")[:200]: kw["obs"]["state"]}
    kw["info"] = {**kw["info"], hostile("info")[:200]: kw["info"]["level"]}
    with RunWriter(
        root,
        name="strings",
        model=m,
        strict=True,
        env_name=hostile("env"),
        algorithm=hostile("algo"),
        config={hostile("config-key"): hostile("config-value"), "discounting": 0.97},
        tags=[hostile("tag")],
    ) as w:
        w.add_capture(step=10, attrs={"metrics": {hostile("attr"): 1.0}}, **kw)
        w.add_capture(step=20, **kw)
    run = root / "strings"
    _edit_json(run / "run.json", lambda d: d.update(name=hostile("name"), versions={hostile("v"): hostile("v")}))
    # A damaged capture whose error message quotes its content.
    second = sorted((run / "captures").iterdir())[-1] / "capture.json"
    _edit_json(second, lambda d: d["arrays"][0].update(group=hostile("group")))
    write_analysis(str(run), {"problems": [hostile("analysis-note")], "captures": [], "embedding": {}}, {})
    return run


def make_corpus(root: Path, model) -> dict[str, str]:
    """Write every hostile run (and ``good``) under ``root``; what each attacks, by name."""
    root.mkdir(parents=True, exist_ok=True)
    outside = root.parent / f"{root.name}-outside"
    outside.mkdir(exist_ok=True)
    (outside / "secret.json").write_text(json.dumps({"secret": "do not read"}))
    made: dict[str, str] = {}

    def case(name: str, what: str, **kw) -> Path:
        made[name] = what
        return _good(root, name, model, **kw)

    _good(root, "good", model)

    # --- reads without bounds
    r = case("zero_symlink", "an array file that is a symlink to /dev/zero")
    f = _array_file(r)
    f.unlink()
    f.symlink_to("/dev/zero")

    r = case("sparse", "an array file replaced by a sparse 8 GB file", compress=False)
    f = _array_file(r)
    with open(f, "r+b") as fh:
        fh.truncate(8 * 2**30)

    r = case("fifo_manifest", "capture.json is a FIFO (a read would block forever)")
    m = _manifest(r)
    m.unlink()
    os.mkfifo(m)

    r = case("fifo_array", "an array file is a FIFO")
    f = _array_file(r)
    f.unlink()
    os.mkfifo(f)

    r = case("fifo_run", "run.json is a FIFO")
    (r / "run.json").unlink()
    os.mkfifo(r / "run.json")

    r = case("model_bomb", "model.mjb.z: 250 kB inflating to 256 MB (tests cap models at 64 MB)")
    (r / "model" / "model.mjb.z").write_bytes(zeros_bomb(256 * 2**20))

    r = case("array_bomb", "an array stream consistent with its declared 512 MB shape (tests cap reads at 256 MB)")
    m = _manifest(r)
    doc = json.loads(m.read_text())
    n = 2**26  # float64 values: 512 MB
    payload = zeros_bomb(n * 8)
    (e,) = [e for e in doc["arrays"] if e["group"] == "params" and e["key"].endswith("kernel")]
    (m.parent / e["file"]).write_bytes(payload)
    e.update(
        shape=[n], stored_shape=[n], dtype="float64", stored_dtype="float64", codec="zlib-shuffle",
        nbytes=len(payload), chunks=[0, len(payload)],
    )  # fmt: skip
    e.pop("crc32", None)
    m.write_text(json.dumps(doc))

    r = case("manifest_symlink_out", "capture.json is a symlink to a file outside the run")
    m = _manifest(r)
    outside_manifest = outside / "capture.json"
    outside_manifest.write_bytes(m.read_bytes())
    m.unlink()
    m.symlink_to(outside_manifest)

    r = case("captures_symlink_out", "captures/ is a symlink to a folder outside the run")
    target = outside / "captures"
    os.rename(r / "captures", target)
    (r / "captures").symlink_to(target)

    r = case("run_json_symlink_out", "run.json is a symlink to a JSON file outside the run")
    (r / "run.json").unlink()
    (r / "run.json").symlink_to(outside / "secret.json")

    r = case("mjcf_outside", "an MJCF whose mesh and include name files outside the run")
    (r / "model" / "model.mjb.z").unlink()
    secret_xml = outside / "inc.xml"
    secret_xml.write_text("<mujoco/>")
    (r / "model" / "model.xml").write_text(
        f'<mujoco><include file="{secret_xml}"/><asset><mesh name="m" file="../../../etc/passwd"/></asset>'
        '<worldbody><geom type="sphere" size="1"/></worldbody></mujoco>'
    )

    # --- documents that made the reader raise other exceptions than FormatError
    deep = "[" * 100_000 + "]" * 100_000
    r = case("deep_run_json", "run.json nested 100,000 levels deep")
    (r / "run.json").write_text('{"format_version": "1.5", "config": ' + deep + "}")

    r = case("deep_manifest", "capture.json's attrs nested 100,000 levels deep")
    m = _manifest(r)
    m.write_text(m.read_text()[:-1] + ', "attrs": ' + deep + "}")

    r = case("deep_attrs", "capture.json's attrs nested 500 levels (parses, too deep to walk)")
    _edit_json(_manifest(r), lambda d: d.update(attrs=json.loads('{"a": ' * 500 + "1" + "}" * 500)))

    r = case("huge_int", "a 5,000-digit integer for the step")
    m = _manifest(r)
    m.write_text(m.read_text().replace('"step": 10', '"step": ' + "9" * 5000, 1))

    r = case("absurd_dtype", "an absurd dtype string")
    _edit_json(_manifest(r), lambda d: d["arrays"][0].update(dtype="(1000000000,)V1000000000"))

    r = case("nul_name", "a NUL in an array's file name")
    _edit_json(_manifest(r), lambda d: d["arrays"][0].update(file="qpos\u0000.zs"))

    r = case("shape_2_64", "a shape beyond 2**64")
    _edit_json(_manifest(r), lambda d: d["arrays"][0].update(shape=[2**70, 3, 7]))

    for name, value in (("dt_nan", "NaN"), ("dt_str", '"fast"'), ("dt_inf", "1e999")):
        r = case(name, f"run.json control_dt_s = {value}")
        p = r / "run.json"
        d = json.loads(p.read_text())
        p.write_text(
            json.dumps(d).replace(f'"control_dt_s": {json.dumps(d["control_dt_s"])}', f'"control_dt_s": {value}')
        )

    r = case("gamma_str", "run.json config.discounting is a string")
    _edit_json(r / "run.json", lambda d: d.update(config={"discounting": "0.99", "reward_scaling": 10}))

    r = case("gamma_nan", "run.json config.reward_scaling is Infinity")
    p = r / "run.json"
    p.write_text(p.read_text().replace('"config": {}', '"config": {"reward_scaling": Infinity}'))

    # --- a run that is big in what it claims, or in how many things it holds
    r = case("problem_folders", "5,000 capture folders without a manifest (a crashed writer's)")
    for i in range(5000):
        (r / "captures" / f"{10**9 + i:012d}-eval-dead{i:04x}").mkdir()

    r = case("sparse_manifests", "20 manifests that are sparse files of 64 MiB - 1 byte each")
    for i in range(20):
        d = r / "captures" / f"{10**9 + i:012d}-eval-spar{i:04x}"
        d.mkdir()
        with open(d / "capture.json", "wb") as f:
            f.truncate(64 * 2**20 - 1)

    r = case("object_bomb", "capture.json's attrs hold 3 million {} (12 MB of JSON)")
    m = _manifest(r)
    text = m.read_text().rstrip()
    m.write_text(text[:-1] + ', "attrs": {"x": [' + ",".join(["{}"] * 3_000_000) + "]}}")

    r = case("attrs_items", "capture.json's attrs hold 150,000 numbers in one object")
    _edit_json(_manifest(r), lambda d: d.update(attrs={f"k{i}": i for i in range(150_000)}))

    r = case("texture_bomb", "an MJCF model with an 8192 x 8192 builtin texture (201 MB), in 300 bytes")
    (r / "model" / "model.mjb.z").unlink()
    (r / "model" / "model.xml").write_text(
        '<mujoco><asset><texture name="t" type="2d" builtin="checker" width="8192" height="8192"/>'
        '<material name="m" texture="t"/></asset><worldbody><geom type="plane" size="1 1 .1" material="m"/>'
        '<body><freejoint/><geom size=".1"/></body></worldbody></mujoco>'
    )

    strings_run(root, model)
    made["strings"] = "hostile text in every string field, and a damaged capture quoting it"
    return made


def damaged_model_bytes(model) -> bytes:
    """``mj_saveModel`` bytes of ``model`` with one actuator's history buffer declared
    2^26 samples long: the file loads, and MuJoCo 3.x then crashes (SIGSEGV) in
    ``mj_forward``, as a bit flip in the wild did."""
    import copy

    from trajscope.store import _model

    m = copy.copy(model)
    m.actuator_history[0, 0] = 2**26
    return _model.to_bytes(m)
